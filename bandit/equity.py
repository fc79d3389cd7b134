"""Equity in the allocation of scarce seats: a reserve for citizens in high need.

A bandit that maximises employment picks, per citizen, the offer with the highest expected
reward, and a scarce offer (private wage subsidies and internships: about 95 and 145 seats a
week) goes to whoever reaches the job centre first in the week among those it suits. Nothing
in that rule prioritises the citizens the literature finds gain most (domain.md 4.6 and 5.2).
Priority weights on the reward cannot change it: with a weight ``w(x) > 0`` that depends on
the citizen only, ``argmax_a w(x) r(x, a) = argmax_a r(x, a)``, so a per-citizen learner makes
the same choices (only the shown estimates would be rescaled). Seats couple citizens, so the
equity rule acts on the seats:

**Scarce-seat reserve (nested booking limit).** For every scarce family a share
``reserve_share`` of its weekly seats is held for *priority* citizens: a citizen who is not a
priority citizen sees the family's offers as full once its free seats are down to the
reserve; a priority citizen may take any free seat. A priority citizen is one whose
*need score*, the serving model's expected employment under the baseline offer (standard
contact, i.e. without intervention), is among the lowest ``priority_share`` of the need
scores of the last ``window`` treatment-arm decisions (a running quantile: the model's
estimates drift and differ in level from the truth, so a fixed threshold would make everyone
or no one a priority citizen while the model learns). The reserve applies to the
recommender arm only (the control arm is practice as usual); the seats are shared by both.

See docs/decisions.md (issue 13, item 1) for the default and the simulator evidence.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bandit.catalog import Catalog, Family
from bandit.costs import baseline_action_id
from bandit.errors import InvalidInputError
from bandit.policies.base import Policy
from bandit.types import Action, Features

DEFAULT_SCARCE_FAMILIES = frozenset({Family.PRIVATE_WAGE_SUBSIDY, Family.PRIVATE_INTERNSHIP})
"""The valuable, scarce families whose seats creaming would misallocate (domain.md 4.1)."""


@dataclass(frozen=True, slots=True)
class EquityConfig:
    """The equity rule's parameters (``service.config.Settings``: ``NBI_EQUITY_*``).

    Parameters
    ----------
    reserve_share
        Share of each scarce family's weekly seats held for priority citizens (0 = off).
    priority_share
        Share of citizens who are priority citizens: those whose need score (expected
        employment without intervention) is among the lowest ``priority_share`` of the last
        ``window`` need scores.
    window
        Need scores the running quantile remembers.
    scarce_families
        The families whose seats are reserved.
    """

    reserve_share: float = 0.0
    priority_share: float = 0.25
    window: int = 2000
    scarce_families: frozenset[Family] = field(default=DEFAULT_SCARCE_FAMILIES)

    def __post_init__(self) -> None:
        if not 0.0 <= self.reserve_share <= 1.0:
            msg = f"Expected 0 <= reserve_share <= 1, got {self.reserve_share}"
            raise InvalidInputError(msg)
        if not 0.0 <= self.priority_share <= 1.0 or self.window < 1:
            msg = f"Expected 0 <= priority_share <= 1 and window >= 1, got {self}"
            raise InvalidInputError(msg)

    @property
    def active(self) -> bool:
        """Whether any seat is reserved."""
        return self.reserve_share > 0.0 and bool(self.scarce_families)


def reserved_seats(
    catalog: Catalog, capacity: Mapping[str, float], config: EquityConfig
) -> dict[Family, int]:
    """Seats per week held for priority citizens, per scarce family.

    ``round(reserve_share x the family's weekly seats)`` (offers without a capacity count 0).
    The reserve is per family, not per offer: most scarce offers have 1-4 seats a week, where
    rounding per offer would hold a whole offer for a share of a quarter.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> cat = default_catalog()
    >>> ids = [i.id for i in cat if i.family is Family.PRIVATE_WAGE_SUBSIDY][:2]
    >>> reserved_seats(cat, {ids[0]: 3, ids[1]: 4}, EquityConfig(reserve_share=0.5))
    {<Family.PRIVATE_WAGE_SUBSIDY: 'private_wage_subsidy'>: 4}
    """
    if not config.active:
        return {}
    totals: dict[Family, float] = {}
    for item in catalog:
        seats = capacity.get(item.id)
        if item.family in config.scarce_families and seats is not None and math.isfinite(seats):
            totals[item.family] = totals.get(item.family, 0.0) + seats
    return {f: round(config.reserve_share * total) for f, total in totals.items()}


@dataclass(slots=True)
class EquityGate:
    """The reserve of one capacity setting: who is a priority citizen and which seats they see.

    Parameters
    ----------
    config
        The rule.
    reserve
        Seats held per scarce family (:func:`reserved_seats`).
    members
        The offer ids of each scarce family with a capacity.
    baseline
        The offer "without intervention" whose expected employment is the need score.

    The gate remembers the last ``config.window`` need scores (:meth:`is_priority`); each
    service process keeps its own.
    """

    config: EquityConfig
    reserve: Mapping[Family, int]
    members: Mapping[Family, tuple[str, ...]]
    baseline: Action
    _recent: deque[float] = field(default_factory=deque, init=False)
    _sorted: list[float] = field(default_factory=list, init=False)

    @classmethod
    def build(
        cls, catalog: Catalog, capacity: Mapping[str, float], config: EquityConfig
    ) -> EquityGate | None:
        """The gate for ``catalog`` with weekly seats ``capacity`` per offer id; ``None`` when
        nothing is reserved or the catalog has no standard-contact offer to measure need."""
        reserve = {f: n for f, n in reserved_seats(catalog, capacity, config).items() if n > 0}
        base_id = baseline_action_id(catalog)  # the cost-benefit baseline too
        if not reserve or base_id is None:
            return None
        members = {
            f: tuple(i.id for i in catalog if i.family is f and i.id in capacity) for f in reserve
        }
        return cls(config, reserve, members, catalog.action(base_id))

    def need_score(self, policy: Policy, features: Features) -> float:
        """The model's expected employment under the baseline offer (lower = more need)."""
        return policy.estimate_of(features, self.baseline)

    def is_priority(self, need_score: float) -> bool:
        """Whether a citizen with ``need_score`` may use the reserved seats: its mid-rank
        among the remembered scores (those below it, plus half of those equal) is below
        ``priority_share`` of them; with nothing remembered, yes. The score is then
        remembered (the oldest forgotten beyond ``window``).

        Examples
        --------
        >>> from bandit.types import Action
        >>> gate = EquityGate(EquityConfig(reserve_share=0.5, priority_share=0.25), {}, {},
        ...                   Action("s", {}))
        >>> [gate.is_priority(s) for s in (0.5, 0.9, 0.8, 0.7, 0.6, 0.75, 0.55)]
        [True, False, False, False, False, False, True]
        """
        # mid-rank: ties count half below, so a model that gives many citizens the same score
        # (e.g. saturated near 1) makes none of them priority rather than all of them
        rank = bisect.bisect_left(self._sorted, need_score) + bisect.bisect_right(
            self._sorted, need_score
        )
        priority = rank < 2 * self.config.priority_share * len(self._sorted) or not self._sorted
        self._recent.append(need_score)
        bisect.insort(self._sorted, need_score)
        if len(self._recent) > self.config.window:
            old = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        return priority

    def seats_for(self, seats_left: Mapping[str, int], *, priority: bool) -> Mapping[str, int]:
        """The free seats a citizen may take: all for a priority citizen; for anyone else a
        scarce family is full once its free seats (summed over its offers) are down to its
        reserve.

        Examples
        --------
        >>> from bandit.types import Action
        >>> w = Family.PRIVATE_WAGE_SUBSIDY
        >>> gate = EquityGate(EquityConfig(reserve_share=0.5), {w: 2}, {w: ("a", "b")},
        ...                   Action("s", {}))
        >>> gate.seats_for({"a": 2, "b": 1, "x": 1}, priority=False)  # 3 free > 2 held
        {'a': 2, 'b': 1, 'x': 1}
        >>> gate.seats_for({"a": 1, "b": 1, "x": 1}, priority=False)  # 2 free: all held
        {'a': 0, 'b': 0, 'x': 1}
        >>> gate.seats_for({"a": 1, "b": 1, "x": 1}, priority=True)
        {'a': 1, 'b': 1, 'x': 1}
        """
        if priority:
            return seats_left
        out: dict[str, int] | None = None
        for family, held in self.reserve.items():
            ids = self.members[family]
            if sum(max(0, seats_left.get(i, 0)) for i in ids) > held:
                continue
            out = dict(seats_left) if out is None else out
            out.update(dict.fromkeys(ids, 0))
        return seats_left if out is None else out


def scarce_ids(catalog: Catalog, families: Iterable[Family]) -> frozenset[str]:
    """Ids of the offers of ``families`` in ``catalog``."""
    wanted = frozenset(families)
    return frozenset(item.id for item in catalog if item.family in wanted)
