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
has passed since the decision, and an event later than today: an ``employed_on`` date in the
future, or a ``weeks_to_job`` / ``weeks_observed`` that puts the event after today (the same
rule in UTC dates: ``w`` weeks is the day ``floor(7 w)`` days after the decision date, the day
``employed_on`` converts to ``w``). Not with ``Settings.simulated_time``: a simulation whose
weeks pass in seconds.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, date, datetime

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
_DAY_EPSILON = 1e-9  # 7 * (days / 7) is ``days`` again, not a hair below


def _check_not_after_today(field: str, weeks: float, decided: date, today: date) -> None:
    """Refuse ``weeks`` after the decision (date) that fall after ``today`` (both UTC dates).

    The event is on the day ``floor(7 * weeks)`` days after the decision date: the day an
    ``employed_on`` date converts to these weeks, so both forms of a report pass or fail alike
    (a report of the decision day itself, ``weeks < 1/7``, passes at once).
    """
    elapsed = max((today - decided).days, 0)
    if math.floor(weeks * _DAYS_PER_WEEK + _DAY_EPSILON) > elapsed:
        msg = (
            f"{field}={weeks:g} is later than today: the decision was {elapsed} days "
            f"({elapsed / _DAYS_PER_WEEK:.1f} weeks) ago, on {decided.isoformat()} (UTC)"
        )
        raise InvalidInputError(msg)


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
    ``employed_on``, or the day ``weeks_to_job`` / ``weeks_observed`` put the event on, must not
    be after today (UTC). Failures raise :class:`InvalidInputError`.
    """
    status = OutcomeStatus(request.status.value)
    weeks_to_job = request.weeks_to_job
    decided = datetime.fromtimestamp(record.timestamp, tz=UTC).date()
    today = None if now is None else datetime.fromtimestamp(now, tz=UTC).date()
    if request.employed_on is not None:
        days = (request.employed_on - decided).days
        if days < 0:
            msg = "employed_on is before the decision date"
            raise InvalidInputError(msg)
        if today is not None and request.employed_on > today:
            msg = "employed_on is in the future"
            raise InvalidInputError(msg)
        weeks_to_job = days / _DAYS_PER_WEEK
    elif today is not None and request.weeks_to_job is not None:
        _check_not_after_today("weeks_to_job", request.weeks_to_job, decided, today)
    if today is not None and request.weeks_observed is not None:
        _check_not_after_today("weeks_observed", request.weeks_observed, decided, today)
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
    result = store.record_outcome(request.event_id, outcome, value.value, censored=value.censored)
    if metrics is not None:  # after the store took it: a refused report (409) is not received
        metrics.outcomes_received.labels(outcome.status.value).inc()
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
