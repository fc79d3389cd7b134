"""The one decision engine, without I/O: decide, and turn outcomes into learning.

``decide``: legal eligibility and seat capacity -> RCT arm -> policy -> :class:`DecisionRecord`
(control group included). ``record_to_decision`` rebuilds the policy's view of a stored record
for learning, and :class:`bandit.feedback.FeedbackLearner` turns outcomes into updates with
the configured delay strategy. The service (``service/decide.py``, ``service/learner.py``)
and the simulator (``simulator/replay.py``) both call these functions, so what the simulator
shows is what the service does, and :class:`DecisionRecord` is the one decision log format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from bandit.catalog import Catalog
from bandit.context import CitizenContext
from bandit.control import Group
from bandit.eligibility import filter_eligible
from bandit.equity import EquityGate
from bandit.errors import InvalidInputError
from bandit.policies.base import Policy
from bandit.records import DecisionRecord
from bandit.types import Action, Decision, FeatureValue

TieKey = TypeVar("TieKey", str, int)
"""What orders tied entries in :func:`top_indices`: offer ids, or integer keys."""


@lru_cache(maxsize=8)
def actions_by_id(catalog: Catalog) -> dict[str, Action]:
    """The catalog's policy actions by id, cached (a catalog is immutable)."""
    return {item.id: catalog.action(item.id) for item in catalog}


@dataclass(frozen=True, slots=True)
class Decided:
    """A new decision: the durable record and, for the treatment arm, the policy's decision."""

    record: DecisionRecord
    decision: Decision | None
    need_score: float | None = None
    """The need score the equity gate used (treatment arm with a gate only)."""


def decide(
    policy: Policy,
    catalog: Catalog,
    context: CitizenContext,
    *,
    event_id: str,
    timestamp: float,
    citizen_key: str,
    group: Group,
    experiment: str = "",
    cluster_key: str | None = None,
    seats_left: Mapping[str, int] | None = None,
    restrict_to: Sequence[str] | None = None,
    features: Mapping[str, FeatureValue] | None = None,
    equity: EquityGate | None = None,
) -> Decided:
    """Decide for one citizen: eligibility and capacity, then the policy (treatment only).

    Parameters
    ----------
    policy
        The serving policy (not called for the control arm).
    catalog
        The offers.
    context
        The citizen's validated case facts (model features; never protected attributes).
    event_id, timestamp, citizen_key
        Identity of the decision (``citizen_key`` is a pseudonym).
    group
        RCT arm, decided by the caller from the pseudonym.
    experiment
        Fingerprint of the experiment configuration, stored in the record.
    cluster_key
        Pseudonym of the randomisation cluster (cluster randomisation only), stored in the record.
    seats_left
        Free seats per offer this period (offers at 0 are excluded as ``capacity``).
    restrict_to
        The case system's own shortlist of offer ids, if any.
    features
        ``context.features()`` when the caller already computed it.
    equity
        The scarce-seat reserve (:mod:`bandit.equity`), applied to the treatment arm when
        ``seats_left`` is given: a citizen who is not a priority citizen sees a scarce offer
        as full once its free seats are down to the reserve.

    Raises
    ------
    NoEligibleActionError
        When no offer is legal and free for this citizen.
    """
    model_features = dict(context.features() if features is None else features)
    need: float | None = None
    if equity is not None and seats_left is not None and group is Group.TREATMENT:
        need = equity.need_score(policy, model_features)
        seats_left = equity.seats_for(seats_left, priority=equity.is_priority(need))
    result = filter_eligible(catalog, context, seats_left=seats_left, restrict_to=restrict_to)
    excluded = {k: v for k, v in result.excluded.items() if v != "not_requested"}
    eligible = result.eligible_ids
    decision: Decision | None = None
    pmf: tuple[float, ...] = ()
    recommended: str | None = None
    propensity: float | None = None
    model_version, policy_name = policy.model_version, policy.name
    if group is Group.TREATMENT:
        by_id = actions_by_id(catalog)
        decision = policy.choose(model_features, [by_id[i] for i in eligible], event_id=event_id)
        eligible, pmf = decision.action_ids, decision.pmf
        recommended, propensity = decision.chosen_action.id, decision.propensity
        model_version, policy_name = decision.model_version, decision.policy
    record = DecisionRecord(
        event_id=event_id,
        timestamp=timestamp,
        citizen_key=citizen_key,
        group=group,
        context=model_features,
        eligible=eligible,
        pmf=pmf,
        recommended=recommended,
        propensity=propensity,
        model_version=model_version,
        policy=policy_name,
        experiment=experiment,
        cluster_key=cluster_key,
        excluded=excluded,
    )
    return Decided(record, decision, need)


def top_indices(pmf: Sequence[float], ids: Sequence[TieKey], k: int) -> list[int]:
    """Indices of the ``k`` most probable entries, best first (ties: smaller id first; ``ids``
    may be any unique keys of one kind, e.g. integers).

    Equal to ``sorted(range(n), key=lambda i: (-pmf[i], ids[i]))[:k]`` (ids are unique, so the
    order is total) but about three times cheaper for a few hundred actions: the k-th largest
    probability is found with a plain float sort, and only the entries at or above it are
    ordered by the tuple key.

    Examples
    --------
    >>> top_indices([0.1, 0.5, 0.2, 0.2], ["a", "b", "d", "c"], 3)
    [1, 3, 2]
    """
    n = len(ids)
    if k < n:
        cut = sorted(pmf, reverse=True)[k - 1]
        above = [i for i in range(n) if pmf[i] > cut]
        tied = [i for i in range(n) if pmf[i] == cut]
        if len(above) + len(tied) >= k:  # always, unless a NaN is involved
            above.sort(key=lambda i: (-pmf[i], ids[i]))
            tied.sort(key=ids.__getitem__)
            return above + tied[: k - len(above)]
    return sorted(range(n), key=lambda i: (-pmf[i], ids[i]))[:k]


def shortlist_indices(
    expected: Sequence[float], ids: Sequence[TieKey], k: int, recommended: int | None
) -> list[int]:
    """The shortlist shown to caseworkers: the ``k`` offers with the highest expected reward
    (ties: smaller id), with the recommended (sampled) offer always included.

    Examples
    --------
    >>> shortlist_indices([0.3, 0.9, 0.5, 0.1], ["a", "b", "c", "d"], 2, recommended=3)
    [1, 3]
    """
    top: list[int] = top_indices(expected, ids, k)
    if recommended is not None and recommended not in top:
        top = [*top[: k - 1], recommended]
    return top


def record_to_decision(record: DecisionRecord, catalog: Catalog) -> Decision:
    """The policy's :class:`Decision` behind a stored treatment record (for learning).

    Raises :class:`InvalidInputError` when the record has no recommendation or names an
    offer the catalog does not know.
    """
    if record.recommended is None or record.propensity is None:
        msg = f"Event {record.event_id} has no recommendation to learn from"
        raise InvalidInputError(msg)
    if record.recommended not in record.eligible:
        msg = f"Event {record.event_id}: the recommendation is not among the eligible actions"
        raise InvalidInputError(msg)
    actions = tuple(catalog.action(a) for a in record.eligible)
    return Decision(
        event_id=record.event_id,
        context=dict(record.context),
        actions=actions,
        pmf=tuple(record.pmf),
        chosen=record.eligible.index(record.recommended),
        propensity=record.propensity,
        expected_rewards=(math.nan,) * len(actions),  # not stored: unknown
        model_version=record.model_version,
        policy=record.policy,
    )
