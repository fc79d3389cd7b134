"""Outcomes to rewards: settlement on report, and the sweep that settles expired decisions.

Rewards follow the design: a job within the horizon settles 1 at once; a job later, or
``unemployed_at_horizon``, settles 0; a dropout before the horizon is censored (no reward).
Decisions still pending when their horizon has passed are marked ``not_reported`` (reward 0,
the register assumption) by :func:`sweep_expired`; that is not a report of unemployment: a real
report arriving later replaces it as a correction, audited by the store
(:meth:`~service.store.base.DecisionStore.corrections`) and learned if the learner has not yet
finalised the event (``bandit.feedback``). Both paths are idempotent: the store refuses a
*different* second reported outcome (409) and ignores the same one.

Reports the clock contradicts are refused (422): ``unemployed_at_horizon`` before the horizon
has passed since the decision, and an ``employed_on`` date in the future (unless
``Settings.simulated_time``: a simulation whose weeks pass in seconds).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from bandit.errors import ConflictError, InvalidInputError
from bandit.records import DecisionRecord
from bandit.rewards import EmployedWithinHorizon, Outcome, OutcomeStatus
from service.metrics import ServiceMetrics
from service.periodic import PeriodicThread
from service.schemas import OutcomeRequest, OutcomeResponse
from service.store.base import DecisionStore, is_correction

logger = logging.getLogger("nbi.settle")

_DAYS_PER_WEEK = 7.0
_DAY_SECONDS = 24 * 3600.0


def outcome_from_request(
    request: OutcomeRequest,
    record: DecisionRecord,
    *,
    horizon_weeks: float | None = None,
    now: float | None = None,
) -> Outcome:
    """Build the domain :class:`Outcome`; a job date becomes weeks since the decision.

    With ``now`` (Unix seconds) the report is checked against the clock:
    ``unemployed_at_horizon`` needs ``horizon_weeks`` to have passed since the decision, and
    ``employed_on`` must not be after today (UTC). Failures raise :class:`InvalidInputError`.
    """
    status = OutcomeStatus(request.status.value)
    weeks_to_job = request.weeks_to_job
    if request.employed_on is not None:
        decided = datetime.fromtimestamp(record.timestamp, tz=UTC).date()
        days = (request.employed_on - decided).days
        if days < 0:
            msg = "employed_on is before the decision date"
            raise InvalidInputError(msg)
        if now is not None and request.employed_on > datetime.fromtimestamp(now, tz=UTC).date():
            msg = "employed_on is in the future"
            raise InvalidInputError(msg)
        weeks_to_job = days / _DAYS_PER_WEEK
    if (
        status is OutcomeStatus.UNEMPLOYED_AT_HORIZON
        and now is not None
        and horizon_weeks is not None
        and now < record.timestamp + horizon_weeks * _DAYS_PER_WEEK * _DAY_SECONDS
    ):
        msg = (
            "unemployed_at_horizon can be reported only once the horizon "
            f"({horizon_weeks:g} weeks) has passed since the decision"
        )
        raise InvalidInputError(msg)
    return Outcome(status, weeks_to_job=weeks_to_job, weeks_observed=request.weeks_observed)


def settle_result(reward: float | None, censored: bool) -> str:
    """Label of a settlement in ``nbi_outcomes_settled_total``."""
    if censored or reward is None:
        return "censored"
    return "employed" if reward > 0 else "not_employed"


_DETAILS = {
    "stored": "Outcome stored and reward settled.",
    "corrected": "Outcome stored as a correction of the horizon sweep's 'not reported' "
    "(audited); reward settled again.",
    "same": "This outcome was already recorded; nothing changed.",
}


def settle_outcome(
    store: DecisionStore,
    request: OutcomeRequest,
    *,
    horizon_weeks: float,
    metrics: ServiceMetrics | None = None,
    now: float | None = None,
    check_clock: bool = True,
) -> OutcomeResponse:
    """Store the outcome of ``request.event_id`` and its reward (idempotent).

    ``check_clock=False`` skips the clock checks of :func:`outcome_from_request` (simulations).
    """
    moment = time.time() if now is None else now
    record = store.get_decision(request.event_id)
    outcome = outcome_from_request(
        request,
        record,
        horizon_weeks=horizon_weeks,
        now=moment if check_clock else None,
    )
    value = EmployedWithinHorizon(horizon_weeks)(outcome)
    if metrics is not None:
        metrics.outcomes_received.labels(outcome.status.value).inc()
    result = store.record_outcome(request.event_id, outcome, value.value, censored=value.censored)
    stored = result.record
    corrected = result.changed and is_correction(record.outcome, outcome)
    if corrected:
        logger.info("late report for %s replaced 'not reported'", stored.event_id)
    if result.changed and metrics is not None:
        metrics.observe_settlement(
            settle_result(stored.reward, stored.censored),
            "correction" if corrected else "api",
            group=stored.group.value,
            reward=stored.reward,
            delay=moment - stored.timestamp,
        )
    detail = _DETAILS["corrected" if corrected else "stored" if result.changed else "same"]
    assert stored.outcome is not None  # noqa: S101 (just settled)
    return OutcomeResponse(
        event_id=stored.event_id,
        status=stored.outcome.status.value,
        reward=stored.reward,
        censored=stored.censored,
        changed=result.changed,
        detail=detail,
    )


def sweep_expired(
    store: DecisionStore,
    *,
    now: float | None = None,
    metrics: ServiceMetrics | None = None,
    batch: int = 500,
) -> int:
    """Mark every decision whose horizon has passed without an outcome ``not_reported``
    (reward 0 until a late report corrects it); return how many."""
    moment = time.time() if now is None else now
    settled = 0
    outcome = Outcome(OutcomeStatus.NOT_REPORTED)
    while True:
        expired = store.expired_pending(moment, limit=batch)
        for record in expired:
            try:
                result = store.record_outcome(record.event_id, outcome, 0.0, censored=False)
            except ConflictError:
                continue  # an outcome arrived meanwhile (another replica): it wins
            if result.changed:
                settled += 1
                if metrics is not None:
                    metrics.observe_settlement(
                        "not_reported",
                        "sweep",
                        group=record.group.value,
                        reward=0.0,
                        delay=moment - record.timestamp,
                    )
        if len(expired) < batch:
            break
    if settled:
        logger.info("sweep marked %d expired decisions 'not reported'", settled)
    return settled


class Sweeper(PeriodicThread):
    """Background thread running :func:`sweep_expired` every ``interval`` seconds."""

    def __init__(
        self, store: DecisionStore, *, interval: float, metrics: ServiceMetrics | None = None
    ) -> None:
        super().__init__(name="nbi-sweeper", interval=interval, first_tick_at_once=True)
        self.store = store
        self.metrics = metrics

    def tick(self) -> int:
        """Settle expired decisions once; return how many."""
        return sweep_expired(self.store, metrics=self.metrics)
