"""The recommendation use case.

pseudonymise the citizen id -> control arm -> eligibility and capacity -> ``policy.choose`` ->
explanation -> durable decision record (control group included) -> response.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

import numpy as np

from bandit.catalog import Catalog
from bandit.context import TargetGroup
from bandit.control import Group, Unit
from bandit.costs import CostBenefit, baseline_action_id, option_costs
from bandit.engine import Decided, actions_by_id, decide, shortlist_indices
from bandit.errors import ConflictError, UnknownActionError
from bandit.explain import OptionExplanation, explain, feature_effects_many
from bandit.policies import Policy, RewardEstimate
from bandit.privacy import pseudonymise, pseudonymise_cluster
from bandit.records import DecisionRecord
from bandit.rewards import BENEFIT_DKK_PER_DAY
from bandit.types import Decision, FeatureValue
from service.history import with_history
from service.metrics import NO_FAMILY
from service.runtime import Runtime
from service.schemas import OptionOut, RecommendationRequest, RecommendationResponse

logger = logging.getLogger("nbi.decide")


def request_key(raw: str, key: bytes) -> str:
    """Keyed hash of a client request id (the raw id is never stored)."""
    return "r_" + hmac.new(key, f"request:{raw}".encode(), hashlib.sha256).hexdigest()[:48]


def request_fingerprint(request: RecommendationRequest, key: bytes) -> str:
    """Keyed hash of the canonical request body (``request_id`` left out): a repeated
    Idempotency-Key with another body is told apart from a retry without storing the body.
    Canonical: after validation, so key order, spacing and omitted defaults do not matter.
    """
    canonical = json.dumps(
        request.model_dump(mode="json", exclude={"request_id"}),
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, f"body:{canonical}".encode(), hashlib.sha256).hexdigest()[:32]


def option_text(option: OptionExplanation) -> str:
    """One caseworker-readable sentence for an explained option (never protected traits)."""
    evidence = (
        "little evidence yet"
        if option.evidence_n < 20  # noqa: PLR2004
        else f"based on {option.evidence_n} outcomes"
    )
    lock = (
        f"; about {option.lock_in_weeks:g} week{'' if option.lock_in_weeks == 1 else 's'}"
        " of lock-in (less time for job search)"
        if option.lock_in_weeks
        else ""
    )
    return (
        f"Expected chance of a job within the horizon: {option.employment_chance:.0%} "
        f"(95 % interval {option.ci_low:.0%}-{option.ci_high:.0%}), {evidence}{lock}. "
        + " ".join(option.drivers)
    )


UNKNOWN_ESTIMATE = RewardEstimate(0.5, 0.0, 1.0, 0)
"""Shown when a model returns a non-finite estimate: "we do not know" (0-100 %)."""


def _finite(estimate: RewardEstimate) -> RewardEstimate:
    values = (estimate.mean, estimate.low, estimate.high)
    if all(math.isfinite(v) for v in values):
        return estimate
    logger.warning("non-finite reward estimate from the policy; showing it as unknown")
    return dataclasses.replace(UNKNOWN_ESTIMATE, n=estimate.n)


def build_options(
    runtime: Runtime,
    policy: Policy,
    record: DecisionRecord,
    features: Mapping[str, FeatureValue],
    max_options: int,
    expected: Sequence[float] | None = None,
    need_score: float | None = None,
) -> list[OptionOut]:
    """The shortlist of a treatment record, best first, with estimates and drivers.

    Options are ranked by the model's expected employment within the horizon (``expected``,
    the decision's own estimates in ``record.eligible`` order; recomputed when absent, e.g.
    for a replayed request), ties in an order fixed by the event (never alphabetical); the
    recommended (sampled) offer is always included. ``features`` are the requesting citizen's model features.

    The decision's own scores are reused wherever the same model would be asked the same
    question again (each offer's estimate depends only on the context and that offer): the
    shortlist's estimates and the base of its feature effects come from ``expected``, and the
    cost-benefit baseline (standard contact) from ``expected`` when it was eligible, else from
    ``need_score``, the equity gate's estimate of that baseline for this citizen.
    """
    if not record.pmf:
        return []
    by_id = actions_by_id(runtime.catalog)
    raw = expected is not None and len(expected) == len(record.eligible)  # the decision's own
    if expected is None or not raw:
        with runtime.policy_lock:
            expected = [
                e.mean for e in policy.estimates(features, [by_id[i] for i in record.eligible])
            ]
    rec_index = None if record.recommended is None else record.eligible.index(record.recommended)
    # Ties (e.g. an untrained model rates every offer alike) are broken by a rotation fixed
    # by the event, not by the offer ids: no alphabetical shortlist.
    n = len(record.eligible)
    seed = int(record.event_id[:16], 16) if _is_hex(record.event_id[:16]) else 0
    step, offset = seed % (_TIE_PRIME - 1) + 1, (seed >> 20) % _TIE_PRIME
    tie_keys: list[int] = ((np.arange(n, dtype=np.int64) * step + offset) % _TIE_PRIME).tolist()
    top = shortlist_indices(expected, tie_keys, max_options, rec_index)
    actions = tuple(by_id[record.eligible[i]] for i in top)
    raw_top = [expected[i] for i in top] if raw else None  # no second model call
    with runtime.policy_lock:
        estimates = [_finite(e) for e in policy.estimates(features, actions, raw=raw_top)]
    order = sorted(range(len(top)), key=lambda j: (-estimates[j].mean, tie_keys[top[j]]))
    top = [top[j] for j in order]
    actions = tuple(actions[j] for j in order)
    estimates = [estimates[j] for j in order]
    shortlist = Decision(
        event_id=record.event_id,
        context=features,
        actions=actions,
        pmf=tuple(record.pmf[i] for i in top),
        chosen=0,
        propensity=record.pmf[top[0]],
        expected_rewards=tuple(e.mean for e in estimates),
        model_version=record.model_version,
        policy=record.policy,
    )
    base = [expected[i] for i in top] if raw else None
    with runtime.policy_lock:
        effects = feature_effects_many(
            lambda ctx: policy.estimates_of(ctx, actions).tolist(),
            features,
            len(actions),
            base=base,
        )
        costs = option_costs(
            policy,
            runtime.catalog,
            features,
            actions,
            estimates,
            horizon_weeks=runtime.settings.horizon_weeks,
            daily_rate_dkk=_daily_rate(runtime, features),
            baseline_raw=_baseline_raw(runtime, record, expected if raw else None, need_score),
        )
    explained = explain(
        shortlist,
        estimates,
        features,
        runtime.catalog,
        top_n=len(top),
        rank_by="estimate",
        effects=effects,
    )
    return [
        OptionOut(
            rank=option.rank,
            action_id=option.action_id,
            name=option.name,
            family=option.family,
            probability=option.probability,
            expected_employment=option.employment_chance,
            ci_low=option.ci_low,
            ci_high=option.ci_high,
            observations=option.evidence_n,
            lock_in_weeks=option.lock_in_weeks,
            drivers=list(option.drivers),
            explanation=option_text(option) + _cost_text(cost),
            **_cost_fields(cost),
        )
        for option, cost in zip(explained, costs, strict=True)
    ]


def _baseline_raw(
    runtime: Runtime,
    record: DecisionRecord,
    expected: Sequence[float] | None,
    need_score: float | None,
) -> float | None:
    """The decision's own raw estimate of the cost-benefit baseline offer: its entry in the
    decision's estimates when it was eligible, else the equity gate's need score, which is the
    estimate of that same offer (both take :func:`~bandit.costs.baseline_action_id`)."""
    base_id = baseline_action_id(runtime.catalog)
    if expected is not None and base_id is not None and base_id in record.eligible:
        return float(expected[record.eligible.index(base_id)])
    return need_score


def _daily_rate(runtime: Runtime, features: Mapping[str, FeatureValue]) -> float:
    """Benefit per day of the citizen's target group (configured, else the domain default)."""
    group = TargetGroup(str(features["target_group"]))
    rates = runtime.settings.benefit_dkk_per_day
    return float(rates.get(group.value, BENEFIT_DKK_PER_DAY[group]))


def _cost_fields(cost: CostBenefit | None) -> dict[str, float]:
    """The cost-benefit fields of :class:`OptionOut` (none when there is no baseline)."""
    if cost is None:
        return {}
    return {
        "benefit_days_saved": round(cost.benefit_days_saved, 2),
        "benefit_days_saved_low": round(cost.benefit_days_saved_low, 2),
        "benefit_days_saved_high": round(cost.benefit_days_saved_high, 2),
        "programme_cost_dkk": round(cost.programme_cost_dkk, 2),
        "net_value_dkk": round(cost.net_value_dkk, 2),
        "net_value_dkk_low": round(cost.net_value_dkk_low, 2),
        "net_value_dkk_high": round(cost.net_value_dkk_high, 2),
    }


def _cost_text(cost: CostBenefit | None) -> str:
    if cost is None:
        return ""
    return (
        f" Versus standard contact: about {cost.benefit_days_saved:.1f} benefit days saved "
        f"within the horizon ({cost.benefit_days_saved_low:.1f} to "
        f"{cost.benefit_days_saved_high:.1f}); net value {cost.net_value_dkk:,.0f} DKK "
        f"({cost.net_value_dkk_low:,.0f} to {cost.net_value_dkk_high:,.0f}) after a programme "
        f"cost of {cost.programme_cost_dkk:,.0f} DKK."
    )


_TIE_PRIME = 1_000_003
"""Ties are ordered by ``(j * step + offset) mod p``: a permutation of the offers fixed by the
event (``p`` prime, ``0 < step < p``), so equal estimates show a scattered shortlist."""


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def _check_requested(catalog: Catalog, ids: Sequence[str] | None) -> None:
    if not ids:
        return
    known = actions_by_id(catalog)
    if known.keys() >= set(ids):  # all known: one set operation instead of a loop
        return
    for i, action_id in enumerate(ids):
        if action_id not in known:  # the detail names the position, never the id
            msg = f"eligible_action_ids[{i}] is not in the catalog"
            raise UnknownActionError(msg)


def _new_record(
    runtime: Runtime,
    policy: Policy,
    request: RecommendationRequest,
    features: dict[str, FeatureValue],
    citizen_key: str,
    group: Group,
    cluster_key: str | None = None,
) -> Decided:
    _check_requested(runtime.catalog, request.eligible_action_ids)
    with runtime.policy_lock:
        return decide(
            policy,
            runtime.catalog,
            request.context,
            event_id=uuid.uuid4().hex,
            timestamp=time.time(),
            citizen_key=citizen_key,
            group=group,
            experiment=runtime.experiment.fingerprint,
            cluster_key=cluster_key,
            seats_left=runtime.capacity.seats_left()
            if runtime.settings.capacity_tracking
            else None,
            restrict_to=request.eligible_action_ids,
            features=features,
            equity=runtime.equity,
        )


def _cluster_key(runtime: Runtime, request: RecommendationRequest, key: bytes) -> str | None:
    """Pseudonym of the request's randomisation cluster (``None`` for per-citizen units)."""
    unit = runtime.experiment.unit
    if unit is Unit.CITIZEN:
        return None
    raw = request.caseworker_id if unit is Unit.CASEWORKER else request.jobcentre_id
    return None if raw is None else pseudonymise_cluster(raw, key, unit.value)


def _staff_keys(request: RecommendationRequest, key: bytes) -> tuple[str | None, str | None]:
    """Pseudonyms of the request's caseworker and job centre (``None``: not named)."""
    caseworker = request.caseworker_id
    jobcentre = request.jobcentre_id
    return (
        None if caseworker is None else pseudonymise_cluster(caseworker, key, "caseworker"),
        None if jobcentre is None else pseudonymise_cluster(jobcentre, key, "jobcentre"),
    )


def recommend(
    runtime: Runtime, request: RecommendationRequest, *, request_id: str | None
) -> RecommendationResponse:
    """Decide for one citizen and store the record; replay a repeated request id."""
    settings = runtime.settings
    key = settings.pseudonym_key_bytes()
    citizen_key = pseudonymise(request.citizen_id, key)
    cluster_key = _cluster_key(runtime, request, key)
    group = runtime.experiment.group_for(citizen_key, cluster_key)
    policy = runtime.policy.get()
    features = with_history(runtime, citizen_key, request.context.features())  # service/history.py
    # Lifecycle mode (service/lifecycle.py): practice as usual does not ask the model (decided
    # as for the control arm); shadow decides and logs the pmf but shows nothing.
    mode = runtime.serving_mode if group is Group.TREATMENT else "live"
    asked = Group.CONTROL if mode == "practice" else group
    decided = _new_record(runtime, policy, request, features, citizen_key, asked, cluster_key)
    if mode != "live":
        decided = Decided(dataclasses.replace(decided.record, group=group, mode=mode), None)
    caseworker, jobcentre = _staff_keys(request, key)
    if caseworker or jobcentre:  # who decided, pseudonymised, for service/oversight.py
        staffed = dataclasses.replace(
            decided.record, caseworker_key=caseworker, jobcentre_key=jobcentre
        )
        decided = Decided(staffed, decided.decision)
    record = decided.record
    stored_key = None if request_id is None else request_key(request_id, key)
    result = runtime.store.put_decision(
        record,
        request_id=stored_key,
        protected=request.protected,
        horizon_seconds=settings.horizon_seconds,
        request_fingerprint=None if request_id is None else request_fingerprint(request, key),
    )
    record = result.record
    if not result.changed and record.citizen_key != citizen_key:
        msg = "This request id was already used for another citizen"
        raise ConflictError(msg)
    if result.changed:
        _count(runtime, record)
    if result.changed and logger.isEnabledFor(logging.INFO):
        logger.info(
            "decision",
            extra={
                "event_id": record.event_id,
                "group": record.group.value,
                "eligible": len(record.eligible),
                "recommended": record.recommended,
                "model_version": record.model_version,
            },
        )
    expected = need = None
    if result.changed and decided.decision is not None:
        expected, need = decided.decision.expected_rewards, decided.need_score
    options = (
        build_options(runtime, policy, record, features, request.max_options, expected, need)
        if record.mode == "live"
        else []
    )
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
        # also shadow mode and the kill switch: nothing is suggested
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
