"""The recommendation use case.

pseudonymise the citizen id -> control arm -> eligibility and capacity -> ``policy.choose`` ->
explanation -> durable decision record (control group included) -> response.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

from bandit.catalog import Catalog, Family, Intervention
from bandit.context import CitizenContext
from bandit.control import Group
from bandit.eligibility import filter_eligible
from bandit.errors import ConflictError
from bandit.policies import Policy, RewardEstimate
from bandit.privacy import pseudonymise
from bandit.records import DecisionRecord
from service.metrics import NO_FAMILY
from service.runtime import Runtime
from service.schemas import OptionOut, RecommendationRequest, RecommendationResponse

logger = logging.getLogger("nbi.decide")

LOCK_IN_FAMILIES = frozenset(
    {
        Family.PRIVATE_INTERNSHIP,
        Family.PUBLIC_INTERNSHIP,
        Family.PRIVATE_WAGE_SUBSIDY,
        Family.PUBLIC_WAGE_SUBSIDY,
        Family.SIX_WEEK_COURSE,
        Family.CLASSROOM_TRAINING,
    }
)
"""Families whose participants search less while enrolled (lock-in)."""


def request_key(raw: str, key: bytes) -> str:
    """Keyed hash of a client request id (the raw id is never stored)."""
    return "r_" + hmac.new(key, f"request:{raw}".encode(), hashlib.sha256).hexdigest()[:48]


def lock_in_weeks(item: Intervention) -> int:
    """Expected lock-in: the offer's length for courses, internships and subsidies, else 0."""
    return item.length_weeks if item.family in LOCK_IN_FAMILIES else 0


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _drivers(item: Intervention, context: CitizenContext) -> list[str]:
    out = []
    weeks = context.weeks_unemployed
    out.append(f"{weeks} weeks unemployed")
    if (
        item.sector not in ("any", context.last_sector.value)
        and context.last_sector.value != "none"
    ):
        out.append(
            f"offer in {item.sector.replace('_', ' ')}, last job in {context.last_sector.value.replace('_', ' ')}"
        )
    elif item.sector == context.last_sector.value:
        out.append("offer matches the sector of the last job")
    if context.labour_demand_index < 0.5:  # noqa: PLR2004
        out.append("low local demand for the citizen's occupation")
    elif context.labour_demand_index > 1.5:  # noqa: PLR2004
        out.append("high local demand for the citizen's occupation")
    return out[:3]


def option_text(item: Intervention, estimate: RewardEstimate, context: CitizenContext) -> str:
    """A short explanation in case terms (never protected traits)."""
    chance = f"{_clip(estimate.mean):.0%} (95 % interval {_clip(estimate.low):.0%}-{_clip(estimate.high):.0%})"
    evidence = (
        "little evidence yet" if estimate.n < 20 else f"based on {estimate.n} outcomes"  # noqa: PLR2004
    )
    lock = lock_in_weeks(item)
    lock_text = f"; about {lock} weeks of lock-in" if lock else ""
    return (
        f"Expected chance of a job within the horizon: {chance}, {evidence}{lock_text}. "
        f"Considered: {'; '.join(_drivers(item, context))}."
    )


def build_options(
    runtime: Runtime,
    policy: Policy,
    record: DecisionRecord,
    context: CitizenContext,
    max_options: int,
) -> list[OptionOut]:
    """The top ``max_options`` options of a treatment record, best first, with estimates."""
    if not record.pmf:
        return []
    order = sorted(range(len(record.eligible)), key=lambda i: (-record.pmf[i], record.eligible[i]))
    top = order[:max_options]
    if record.recommended is not None:
        rec_index = record.eligible.index(record.recommended)
        if rec_index not in top:
            top = [*top[: max_options - 1], rec_index]
    items = [runtime.catalog.get(record.eligible[i]) for i in top]
    with runtime.policy_lock:
        estimates = policy.estimates(context.features(), [item.as_action() for item in items])
    return [
        OptionOut(
            rank=rank + 1,
            action_id=item.id,
            name=item.name,
            family=item.family.value,
            probability=record.pmf[i],
            expected_employment=_clip(est.mean),
            ci_low=_clip(est.low),
            ci_high=_clip(est.high),
            observations=est.n,
            lock_in_weeks=lock_in_weeks(item),
            explanation=option_text(item, est, context),
        )
        for rank, (i, item, est) in enumerate(zip(top, items, estimates, strict=True))
    ]


def _check_requested(catalog: Catalog, ids: Sequence[str] | None) -> None:
    for action_id in ids or ():
        catalog.index_of(action_id)  # UnknownActionError (422) when absent


def _new_record(
    runtime: Runtime,
    policy: Policy,
    request: RecommendationRequest,
    citizen_key: str,
    group: Group,
) -> DecisionRecord:
    catalog = runtime.catalog
    _check_requested(catalog, request.eligible_action_ids)
    result = filter_eligible(
        catalog,
        request.context,
        seats_left=runtime.capacity.seats_left(),
        restrict_to=request.eligible_action_ids,
    )
    excluded: Mapping[str, str] = {k: v for k, v in result.excluded.items() if v != "not_requested"}
    event_id = uuid.uuid4().hex
    features = request.context.features()
    record = DecisionRecord(
        event_id=event_id,
        timestamp=time.time(),
        citizen_key=citizen_key,
        group=group,
        context=features,
        eligible=result.eligible_ids,
        pmf=(),
        recommended=None,
        propensity=None,
        model_version=policy.model_version,
        policy=policy.name,
        experiment=runtime.experiment.fingerprint,
        excluded=excluded,
    )
    if group is Group.CONTROL:
        return record
    actions = [catalog.action(i) for i in result.eligible_ids]
    with runtime.policy_lock:
        decision = policy.choose(features, actions, event_id=event_id)
    return dataclasses.replace(
        record,
        eligible=decision.action_ids,
        pmf=decision.pmf,
        recommended=decision.chosen_action.id,
        propensity=decision.propensity,
        model_version=decision.model_version,
        policy=decision.policy,
    )


def recommend(
    runtime: Runtime, request: RecommendationRequest, *, request_id: str | None
) -> RecommendationResponse:
    """Decide for one citizen and store the record; replay a repeated request id."""
    settings = runtime.settings
    key = settings.pseudonym_key_bytes()
    citizen_key = pseudonymise(request.citizen_id, key)
    group = runtime.experiment.group_of(citizen_key)
    policy = runtime.policy.get()
    record = _new_record(runtime, policy, request, citizen_key, group)
    stored_key = None if request_id is None else request_key(request_id, key)
    result = runtime.store.put_decision(
        record,
        request_id=stored_key,
        protected=request.protected,
        horizon_seconds=settings.horizon_seconds,
    )
    record = result.record
    if not result.changed and record.citizen_key != citizen_key:
        msg = "This request id was already used for another citizen"
        raise ConflictError(msg)
    if result.changed:
        _count(runtime, record)
        logger.info(
            "decision",
            extra={
                "event_id": record.event_id,
                "group": record.group.value,
                "citizen_key": citizen_key[:14],
                "eligible": len(record.eligible),
                "recommended": record.recommended,
                "model_version": record.model_version,
            },
        )
    options = build_options(runtime, policy, record, request.context, request.max_options)
    recommended = next((o for o in options if o.action_id == record.recommended), None)
    return RecommendationResponse(
        event_id=record.event_id,
        group=record.group.value,
        replayed=not result.changed,
        recommendation=recommended,
        options=options,
        eligible_count=len(record.eligible),
        model_version=record.model_version,
        policy=record.policy,
        horizon_weeks=settings.horizon_weeks,
        explanation=_summary(record, recommended),
    )


def _summary(record: DecisionRecord, recommended: OptionOut | None) -> str:
    if record.group is Group.CONTROL or recommended is None:
        return "No recommendation for this citizen: plan the next step as usual."
    return (
        f"Suggested: {recommended.name}. {recommended.explanation} "
        "The caseworker decides; record the choice with a reason code if it differs."
    )


def _count(runtime: Runtime, record: DecisionRecord) -> None:
    if record.recommended is None:
        runtime.metrics.observe_recommendation(NO_FAMILY, record.group.value)
        return
    family = runtime.catalog.get(record.recommended).family.value
    runtime.metrics.observe_recommendation(
        family, record.group.value, min_probability=min(record.pmf), propensity=record.propensity
    )


def decision_date(record: DecisionRecord) -> date:
    """Calendar date (UTC) of a decision."""
    return datetime.fromtimestamp(record.timestamp, tz=UTC).date()
