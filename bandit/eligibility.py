"""Legal eligibility and seat capacity: the filter applied before any scoring.

Rules (domain.md section 5.2):

* target group, age window and the offer's window of weeks unemployed;
* wage subsidies (private and public) from week 26, or from week 1 for citizens without
  upper-secondary education, aged 50+ or single parents;
* the 6-week job-directed course only for unskilled or skilled citizens (no higher education),
  from week 5, within month 9 (month 6 if under 25);
* offers with no free seat this period are removed (capacity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from bandit.catalog import Catalog, Family, Intervention
from bandit.context import CitizenContext, Education, TargetGroup
from bandit.errors import NoEligibleActionError

WAGE_SUBSIDY_MIN_WEEKS = 26
WAGE_SUBSIDY_EXCEPTION_AGE = 50
SIX_WEEK_COURSE_YOUNG_AGE = 25
SIX_WEEK_COURSE_YOUNG_MAX_WEEKS = 26
_SKILLED_OR_UNSKILLED = frozenset(
    {Education.LOWER_SECONDARY, Education.UPPER_SECONDARY, Education.VOCATIONAL}
)
_WAGE_SUBSIDY = frozenset({Family.PRIVATE_WAGE_SUBSIDY, Family.PUBLIC_WAGE_SUBSIDY})


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    """Outcome of the filter: what may be offered and why the rest may not (logged)."""

    eligible: tuple[Intervention, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)

    @property
    def eligible_ids(self) -> tuple[str, ...]:
        """Ids of the eligible offers, catalog order."""
        return tuple(item.id for item in self.eligible)


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """The only citizen facts the legal rules read (hashable, so results can be cached)."""

    target_group: TargetGroup
    age: int
    education: Education
    weeks_unemployed: int
    single_parent: bool

    @classmethod
    def of(cls, context: CitizenContext | RuleFacts) -> RuleFacts:
        """The rule facts of a citizen context."""
        if isinstance(context, RuleFacts):
            return context
        return cls(
            context.target_group,
            context.age,
            context.education,
            context.weeks_unemployed,
            context.single_parent,
        )

    @property
    def no_upper_secondary(self) -> bool:
        """True when the citizen has no education beyond lower secondary."""
        return self.education is Education.LOWER_SECONDARY


def wage_subsidy_exception(context: CitizenContext | RuleFacts) -> bool:
    """True when the citizen may start a wage subsidy before week 26."""
    return (
        context.no_upper_secondary
        or context.age >= WAGE_SUBSIDY_EXCEPTION_AGE
        or context.single_parent
    )


def exclusion_reason(item: Intervention, context: CitizenContext | RuleFacts) -> str | None:
    """Why ``item`` is not legally allowed for ``context``, or ``None`` when it is."""
    if context.target_group not in item.target_groups:
        return "target_group"
    if not item.min_age <= context.age <= item.max_age:
        return "age"
    weeks = context.weeks_unemployed
    min_weeks = item.min_weeks_unemployed
    if item.family in _WAGE_SUBSIDY and wage_subsidy_exception(context):
        min_weeks = min(min_weeks, 0)
    if weeks < min_weeks:
        return "too_early"
    max_weeks = item.max_weeks_unemployed
    if item.family is Family.SIX_WEEK_COURSE:
        if context.education not in _SKILLED_OR_UNSKILLED:
            return "education"
        if context.age < SIX_WEEK_COURSE_YOUNG_AGE:
            max_weeks = min(
                max_weeks or SIX_WEEK_COURSE_YOUNG_MAX_WEEKS, SIX_WEEK_COURSE_YOUNG_MAX_WEEKS
            )
    if max_weeks is not None and weeks > max_weeks:
        return "too_late"
    return None


@lru_cache(maxsize=8192)
def _legal_reasons(catalog: Catalog, facts: RuleFacts) -> tuple[str | None, ...]:
    """Legal exclusion reason per catalog entry, memoised on the facts the rules read.

    A catalog is immutable, so the result depends only on ``facts``; caching turns the
    per-request rule evaluation over several hundred offers into a dictionary lookup.
    """
    return tuple(exclusion_reason(item, facts) for item in catalog)


@lru_cache(maxsize=8192)
def _legal_split(
    catalog: Catalog, facts: RuleFacts
) -> tuple[tuple[Intervention, ...], dict[str, str]]:
    """Legally eligible offers and the legal exclusion reasons, memoised like
    :func:`_legal_reasons` (callers copy the dict before changing it)."""
    reasons = _legal_reasons(catalog, facts)
    items = tuple(item for item, r in zip(catalog, reasons, strict=True) if r is None)
    excluded = {item.id: r for item, r in zip(catalog, reasons, strict=True) if r is not None}
    return items, excluded


def _filter_slow(
    catalog: Catalog | Sequence[Intervention],
    facts: RuleFacts,
    seats_left: Mapping[str, int] | None,
    allowed: set[str] | None,
) -> tuple[list[Intervention], dict[str, str]]:
    legal = _legal_reasons(catalog, facts) if isinstance(catalog, Catalog) else None
    eligible: list[Intervention] = []
    excluded: dict[str, str] = {}
    for i, item in enumerate(catalog):
        reason: str | None
        if allowed is not None and item.id not in allowed:
            reason = "not_requested"
        else:
            reason = exclusion_reason(item, facts) if legal is None else legal[i]
        if reason is None and seats_left is not None and seats_left.get(item.id, 1) <= 0:
            reason = "capacity"
        if reason is None:
            eligible.append(item)
        else:
            excluded[item.id] = reason
    return eligible, excluded


def _filter_requested(
    catalog: Catalog,
    facts: RuleFacts,
    seats_left: Mapping[str, int] | None,
    allowed: set[str],
) -> tuple[list[Intervention], dict[str, str]]:
    """:func:`_filter_slow` for a catalog and a requested shortlist, from the memoised legal
    reasons: the same eligible list and the same reasons in the same (catalog) order, in one
    comprehension each instead of a loop over the catalog (a third of the time at 330 offers).
    """
    legal_items, _ = _legal_split(catalog, facts)
    full = {i for i, n in seats_left.items() if n <= 0} if seats_left else set()
    eligible = [item for item in legal_items if item.id in allowed and item.id not in full]
    excluded = {
        i: "not_requested" if i not in allowed else "capacity" if r is None else r
        for i, r in zip(catalog.ids, _legal_reasons(catalog, facts), strict=True)
        if i not in allowed or r is not None or i in full
    }
    return eligible, excluded


def filter_eligible(
    catalog: Catalog | Sequence[Intervention],
    context: CitizenContext,
    *,
    seats_left: Mapping[str, int] | None = None,
    restrict_to: Sequence[str] | None = None,
) -> EligibilityResult:
    """Apply legal rules and capacity to the catalog.

    Parameters
    ----------
    catalog
        Candidate offers.
    context
        The citizen.
    seats_left
        Free seats per offer id this period; an offer with 0 left is excluded as ``capacity``.
        Offers missing from the mapping are treated as unlimited.
    restrict_to
        Optional ids requested by the caller (the case system's own shortlist); others are
        excluded as ``not_requested``.

    Raises
    ------
    NoEligibleActionError
        When nothing is left; the message summarises the reasons.
    """
    allowed = None if restrict_to is None else set(restrict_to)
    facts = RuleFacts.of(context)
    if isinstance(catalog, Catalog) and allowed is None:
        legal_items, legal_excluded = _legal_split(catalog, facts)
        excluded: dict[str, str] = dict(legal_excluded)
        if seats_left:
            full = {i for i, n in seats_left.items() if n <= 0}
            eligible = [item for item in legal_items if item.id not in full]
            if len(eligible) != len(legal_items):
                excluded.update({item.id: "capacity" for item in legal_items if item.id in full})
        else:
            eligible = list(legal_items)
    elif isinstance(catalog, Catalog) and allowed is not None:
        eligible, excluded = _filter_requested(catalog, facts, seats_left, allowed)
    else:
        eligible, excluded = _filter_slow(catalog, facts, seats_left, allowed)
    if not eligible:
        counts: dict[str, int] = {}
        for reason in excluded.values():
            counts[reason] = counts.get(reason, 0) + 1
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        msg = f"No eligible intervention for this citizen ({summary})"
        raise NoEligibleActionError(msg)
    return EligibilityResult(tuple(eligible), excluded)
