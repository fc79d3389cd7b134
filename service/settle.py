"""Outcomes to rewards: settlement on report, and the sweep that settles expired decisions.

Rewards follow the design: a job within the horizon settles 1 at once; a job later, or
``unemployed_at_horizon``, settles 0; a dropout before the horizon is censored (no reward).
Decisions still pending when their horizon has passed are settled as 0 by :func:`sweep_expired`.
Both paths are idempotent: the store refuses a *different* second outcome (409) and ignores the
same one.
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
from service.store.base import DecisionStore

logger = logging.getLogger("nbi.settle")

_DAYS_PER_WEEK = 7.0


def outcome_from_request(request: OutcomeRequest, record: DecisionRecord) -> Outcome:
    """Build the domain :class:`Outcome`; a job date becomes weeks since the decision."""
    weeks_to_job = request.weeks_to_job
    if request.employed_on is not None:
        decided = datetime.fromtimestamp(record.timestamp, tz=UTC).date()
        days = (request.employed_on - decided).days
        if days < 0:
            msg = "employed_on is before the decision date"
            raise InvalidInputError(msg)
        weeks_to_job = days / _DAYS_PER_WEEK
    return Outcome(request.status, weeks_to_job=weeks_to_job, weeks_observed=request.weeks_observed)


def settle_result(reward: float | None, censored: bool) -> str:
    """Label of a settlement in ``nbi_outcomes_settled_total``."""
    if censored or reward is None:
        return "censored"
    return "employed" if reward > 0 else "not_employed"


def settle_outcome(
    store: DecisionStore,
    request: OutcomeRequest,
    *,
    horizon_weeks: float,
    metrics: ServiceMetrics | None = None,
    now: float | None = None,
) -> OutcomeResponse:
    """Store the outcome of ``request.event_id`` and its reward (idempotent)."""
    record = store.get_decision(request.event_id)
    outcome = outcome_from_request(request, record)
    value = EmployedWithinHorizon(horizon_weeks)(outcome)
    if metrics is not None:
        metrics.outcomes_received.labels(outcome.status.value).inc()
    result = store.record_outcome(request.event_id, outcome, value.value, censored=value.censored)
    stored = result.record
    if result.changed and metrics is not None:
        metrics.observe_settlement(
            settle_result(stored.reward, stored.censored),
            "api",
            group=stored.group.value,
            reward=stored.reward,
            delay=(time.time() if now is None else now) - stored.timestamp,
        )
    detail = (
        "Outcome stored and reward settled."
        if result.changed
        else "This outcome was already recorded; nothing changed."
    )
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
    """Settle every decision whose horizon has passed without an outcome as 0; return count."""
    moment = time.time() if now is None else now
    settled = 0
    outcome = Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON)
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
                        "not_employed",
                        "sweep",
                        group=record.group.value,
                        reward=0.0,
                        delay=moment - record.timestamp,
                    )
        if len(expired) < batch:
            break
    if settled:
        logger.info("sweep settled %d expired decisions as 0", settled)
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
