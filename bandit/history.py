"""A citizen's earlier spells as model features: one pure rule for the service and the simulator.

People return: about 40 % of those who find a job are back on benefit within a year
(domain.md 5.3, weekly job separation 0.01). What happened in an earlier spell is a case fact
the model may use, so a returning citizen's context gets three history features:

``prior_spells``
    Earlier spells of this pseudonym (capped at :data:`~bandit.context.MAX_PRIOR_SPELLS`).
``weeks_since_last_spell``
    Weeks from the last decision of the previous spell to the start of this spell (capped at
    :data:`~bandit.context.MAX_WEEKS_SINCE_LAST_SPELL`).
``last_family``
    Family of the offer the caseworker last assigned in the previous spell, or ``"none"`` when
    no assignment was recorded there.

Spells are told apart by their start, ``timestamp - weeks_unemployed`` weeks: decisions whose
starts lie within :data:`SAME_SPELL_WEEKS` of each other belong to one spell (a second meeting
in the same spell is not a new spell). Only spells that started more than that before the
current one count. A citizen without an earlier spell gets no history keys at all, so first
spells keep exactly the features they had before history existed.

The service (``service/history.py``, from its own records of the pseudonym) and the simulator
(``simulator/replay.py``, from the records it made) call :func:`history_features` and
:func:`merge_history`, so the history means the same in both. Case-system history sent in the
request (:class:`~bandit.context.CitizenContext` fields of the same names) wins as a whole.
The RCT arm is never a feature, and neither are protected attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bandit.context import MAX_PRIOR_SPELLS, MAX_WEEKS_SINCE_LAST_SPELL, NO_FAMILY
from bandit.errors import UnknownActionError
from bandit.types import FeatureValue

if TYPE_CHECKING:
    from bandit.catalog import Catalog
    from bandit.records import DecisionRecord

HISTORY_FEATURES = ("prior_spells", "weeks_since_last_spell", "last_family")
"""The history feature names (also the optional case-system fields of the context)."""
SAME_SPELL_WEEKS = 4.0
"""Decisions whose implied spell starts are this close (weeks) belong to one spell."""
WEEK_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class PastDecision:
    """What the history needs of one earlier decision of the citizen.

    Parameters
    ----------
    timestamp
        Unix time (seconds) of the decision.
    weeks_unemployed
        Weeks into its spell at the decision.
    family
        Family of the offer the caseworker assigned, ``None`` when not recorded.
    """

    timestamp: float
    weeks_unemployed: float
    family: str | None

    @property
    def spell_start(self) -> float:
        """Implied start of the decision's spell (Unix seconds)."""
        return self.timestamp - self.weeks_unemployed * WEEK_SECONDS


def past_decisions(records: Iterable[DecisionRecord], catalog: Catalog) -> list[PastDecision]:
    """The history view of stored decision records (an unknown assigned offer: no family)."""
    out = []
    for record in records:
        weeks = record.context.get("weeks_unemployed", 0)
        family = None
        if record.assigned is not None:
            try:
                family = catalog.get(record.assigned).family.value
            except UnknownActionError:  # an offer since removed from the catalog
                family = None
        out.append(PastDecision(record.timestamp, float(weeks), family))
    return out


def history_features(
    past: Sequence[PastDecision], *, timestamp: float, weeks_unemployed: float
) -> dict[str, FeatureValue]:
    """History features of a decision at ``timestamp``, ``weeks_unemployed`` into its spell.

    Empty when no earlier spell is known (first spells keep their features unchanged).

    Examples
    --------
    >>> w = WEEK_SECONDS
    >>> past = [PastDecision(0.0, 0, "mentor"), PastDecision(2 * w, 2, None),
    ...         PastDecision(40 * w, 0, "private_internship")]
    >>> history_features(past, timestamp=60 * w, weeks_unemployed=4)
    {'prior_spells': 2, 'weeks_since_last_spell': 16, 'last_family': 'private_internship'}
    >>> history_features(past[:2], timestamp=3 * w, weeks_unemployed=3)  # same spell
    {}
    >>> history_features(past[:2], timestamp=30 * w, weeks_unemployed=1)["last_family"]
    'mentor'
    """
    current = timestamp - weeks_unemployed * WEEK_SECONDS
    tolerance = SAME_SPELL_WEEKS * WEEK_SECONDS
    earlier = sorted(
        (p for p in past if p.timestamp <= timestamp and p.spell_start < current - tolerance),
        key=lambda p: (p.spell_start, p.timestamp),
    )
    if not earlier:
        return {}
    spells: list[list[PastDecision]] = [[earlier[0]]]
    for p in earlier[1:]:
        if p.spell_start - spells[-1][-1].spell_start > tolerance:
            spells.append([p])
        else:
            spells[-1].append(p)
    last = max(spells[-1], key=lambda p: p.timestamp)
    assigned = [p for p in spells[-1] if p.family is not None]
    family = max(assigned, key=lambda p: p.timestamp).family if assigned else None
    gap = max(0.0, (current - last.timestamp) / WEEK_SECONDS)
    return {
        "prior_spells": min(len(spells), MAX_PRIOR_SPELLS),
        "weeks_since_last_spell": min(round(gap), MAX_WEEKS_SINCE_LAST_SPELL),
        "last_family": NO_FAMILY if family is None else family,
    }


def merge_history(
    features: Mapping[str, FeatureValue], derived: Mapping[str, FeatureValue]
) -> dict[str, FeatureValue]:
    """``features`` with the derived history added, unless the case system sent its own.

    Examples
    --------
    >>> merge_history({"age": 30}, {"prior_spells": 1})
    {'age': 30, 'prior_spells': 1}
    >>> merge_history({"age": 30, "prior_spells": 3}, {"prior_spells": 1, "last_family": "mentor"})
    {'age': 30, 'prior_spells': 3}
    """
    if any(name in features for name in HISTORY_FEATURES):
        return dict(features)
    return {**features, **derived}
