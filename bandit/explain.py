"""Explanations of a recommendation in words a caseworker can use.

For each of the top options of a :class:`~bandit.types.Decision`: the expected chance of
employment within the horizon (26 weeks) with a 95 % interval (from
:meth:`bandit.policies.base.Policy.estimates`), the expected lock-in, and one to three main
drivers in plain words.

Drivers are built ONLY from case facts on a fixed whitelist (weeks unemployed, education,
the offer's sector against the last job's, local labour demand, benefit history). Protected
traits (gender, origin, age) and sensitive ones (health, family situation, language as a proxy
for origin) are never used as reasons, even when they are present in the context.

Lock-in weeks = programme length x the drop in the weekly job-finding rate while in the
programme, with the family mid-points of domain.md section 5.2 (e.g. wage subsidy jobs x0.4-0.7,
classroom training x0.4-0.6): the number of job-search weeks the programme costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bandit.catalog import Catalog
from bandit.errors import InvalidInputError, UnknownActionError
from bandit.policies.base import RewardEstimate
from bandit.types import Action, Decision, Features, FeatureValue

LOCK_IN_SHARE: Mapping[str, float] = {
    "private_wage_subsidy": 0.4,
    "public_wage_subsidy": 0.5,
    "six_week_course": 0.35,
    "classroom_training": 0.5,
    "public_internship": 0.15,
    "job_search_course": 0.1,
}
"""Drop of the job-finding rate while in the programme, per family (others: none)."""

WORK_BASED = frozenset(
    {"private_internship", "public_internship", "private_wage_subsidy", "public_wage_subsidy"}
)
COURSES = frozenset({"six_week_course", "classroom_training", "job_search_course"})
DRIVER_FEATURES = (
    "weeks_unemployed",
    "education",
    "last_sector",
    "labour_demand_index",
    "benefit_history_weeks",
)
"""The only context features drivers may use."""

_LONG_TERM, _EARLY = 26, 13
_HIGH_DEMAND, _LOW_DEMAND = 1.5, 0.7
_LONG_HISTORY = 26
_LOW_EDUCATION = frozenset({"lower_secondary", "vocational", "upper_secondary"})
_NO_SECTOR = frozenset({"", "any", "none"})


@dataclass(frozen=True, slots=True)
class OptionExplanation:
    """One recommended option, explained.

    Parameters
    ----------
    action_id, name, family
        The offer.
    rank
        1 for the top option.
    probability
        The policy's probability of recommending it.
    employment_chance, ci_low, ci_high
        Expected chance of a job within the horizon with a 95 % interval, clipped to [0, 1].
    evidence_n
        Number of outcomes of this offer the model has learned from.
    length_weeks, lock_in_weeks
        Planned length, and the job-search weeks the programme is expected to cost.
    drivers
        One to three plain-language reasons.
    """

    action_id: str
    name: str
    family: str
    rank: int
    probability: float
    employment_chance: float
    ci_low: float
    ci_high: float
    evidence_n: int
    length_weeks: int
    lock_in_weeks: float
    drivers: tuple[str, ...]


def lock_in_weeks(family: str, length_weeks: int) -> float:
    """Expected job-search weeks lost to the programme, rounded to half weeks.

    Examples
    --------
    >>> lock_in_weeks("private_wage_subsidy", 20), lock_in_weeks("mentor", 20)
    (8.0, 0.0)
    """
    return round(2 * LOCK_IN_SHARE.get(family, 0.0) * length_weeks) / 2


def explain(
    decision: Decision,
    estimates: Sequence[RewardEstimate],
    context: Features,
    catalog: Catalog | None = None,
    *,
    top_n: int = 3,
    rank_by: str = "pmf",
    effects: Sequence[Mapping[str, float]] | None = None,
) -> list[OptionExplanation]:
    """Explain the ``top_n`` options of ``decision`` (best first).

    Parameters
    ----------
    decision
        The policy's decision (its pmf ranks the options).
    estimates
        ``policy.estimates(context, decision.actions)``, one per action in decision order.
    context
        The citizen's model features; only :data:`DRIVER_FEATURES` are read.
    catalog
        For offer names and lengths; without it (or for offers not in it) the action's own
        features are used.
    top_n
        Number of options to explain.
    rank_by
        ``"pmf"`` (the policy's probabilities) or ``"estimate"`` (the shown expected
        employment; ties keep the given order): the shortlist caseworkers see is ranked by
        estimate.
    effects
        Per action, how much each case fact moves the model's estimate
        (:func:`feature_effects`); drivers are then the facts that move it most, with the
        size of the move. Without it, drivers are chosen by fixed relevance rules.

    Examples
    --------
    >>> from bandit.policies.base import RewardEstimate
    >>> from bandit.types import Action, Decision
    >>> act = Action("P1", {"family": "private_internship", "sector": "it", "length_weeks": 4})
    >>> d = Decision(event_id="e", context={}, actions=(act,), pmf=(1.0,), chosen=0,
    ...              propensity=1.0, expected_rewards=(0.4,), model_version="v", policy="vw")
    >>> ctx = {"weeks_unemployed": 30, "last_sector": "it", "labour_demand_index": 2.0}
    >>> [opt] = explain(d, [RewardEstimate(0.4, 0.3, 0.5, 12)], ctx)
    >>> opt.employment_chance, opt.lock_in_weeks, len(opt.drivers)
    (0.4, 0.0, 3)
    >>> opt.drivers[0]
    'Unemployed for 30 weeks (long-term): work-based offers such as internships and wage subsidies tend to help most now.'
    """
    if len(estimates) != len(decision.actions):
        msg = f"Expected one estimate per action ({len(decision.actions)}), got {len(estimates)}"
        raise InvalidInputError(msg)
    if top_n < 1:
        msg = f"Expected top_n >= 1, got {top_n}"
        raise InvalidInputError(msg)
    if rank_by not in ("pmf", "estimate"):
        msg = f"rank_by must be 'pmf' or 'estimate', got {rank_by!r}"
        raise InvalidInputError(msg)
    facts = {k: context[k] for k in DRIVER_FEATURES if k in context}
    if rank_by == "estimate":
        ranking = sorted(range(len(decision.actions)), key=lambda i: -estimates[i].mean)
    else:
        ranking = decision.ranking()
    out = []
    for rank, i in enumerate(ranking[:top_n], start=1):
        action, est = decision.actions[i], estimates[i]
        name, family, length, sector = _offer(action, catalog)
        out.append(
            OptionExplanation(
                action_id=action.id,
                name=name,
                family=family,
                rank=rank,
                probability=decision.pmf[i],
                employment_chance=_clip(est.mean),
                ci_low=_clip(est.low),
                ci_high=_clip(est.high),
                evidence_n=est.n,
                length_weeks=length,
                lock_in_weeks=lock_in_weeks(family, length),
                drivers=drivers(
                    facts, family, sector, effects=None if effects is None else effects[i]
                ),
            )
        )
    return out


def _clip(x: float) -> float:
    return min(max(float(x), 0.0), 1.0)


def _offer(action: Action, catalog: Catalog | None) -> tuple[str, str, int, str]:
    if catalog is not None:
        try:
            item = catalog.get(action.id)
        except UnknownActionError:
            pass
        else:
            return item.name, item.family.value, item.length_weeks, item.sector
    f = action.features
    length = f.get("length_weeks", 1)
    weeks = int(length) if isinstance(length, (int, float)) else 1
    return action.id, str(f.get("family", "")), weeks, str(f.get("sector", "any"))


# --------------------------------------------------------------------------- drivers

_Driver = tuple[float, str]


def _weeks_driver(facts: Features, family: str, sector: str) -> _Driver | None:
    if "weeks_unemployed" not in facts:
        return None
    w = int(facts["weeks_unemployed"])
    if w >= _LONG_TERM:
        text = (
            f"Unemployed for {w} weeks (long-term): work-based offers such as internships "
            "and wage subsidies tend to help most now."
        )
        return (3.0 if family in WORK_BASED else 1.5), text
    if w < _EARLY:
        text = (
            f"Early in the spell ({w} weeks): many find work soon on their own, so short "
            "offers with little lock-in fit best."
        )
        return (2.5 if LOCK_IN_SHARE.get(family, 0.0) < 0.2 else 1.0), text  # noqa: PLR2004
    return 1.0, f"{w} weeks unemployed: extra help starts to pay off after the first months."


def _sector_driver(facts: Features, family: str, sector: str) -> _Driver | None:
    last = str(facts.get("last_sector", "none"))
    if sector in _NO_SECTOR or last in _NO_SECTOR:
        return None
    pretty, last_pretty = sector.replace("_", " "), last.replace("_", " ")
    if sector == last:
        return 2.8, f"The offer is in the citizen's last sector ({pretty}), so experience counts."
    return 1.2, (
        f"The offer is in {pretty}, a change from the last job in {last_pretty}; "
        "worth it if that sector has few openings."
    )


def _demand_driver(facts: Features, family: str, sector: str) -> _Driver | None:
    if "labour_demand_index" not in facts:
        return None
    d = float(facts["labour_demand_index"])
    if d >= _HIGH_DEMAND:
        text = (
            f"High local demand in the citizen's occupation ({d:.1f} vacancies per unemployed "
            "person): job-search help and internships can turn this into a job quickly."
        )
        return (2.6 if family in WORK_BASED or family == "job_search_course" else 1.4), text
    if d <= _LOW_DEMAND:
        text = (
            f"Low local demand in the citizen's occupation ({d:.1f} vacancies per unemployed "
            "person): upskilling or a change of sector may be needed."
        )
        return (2.6 if family in COURSES else 1.4), text
    return None


def _education_driver(facts: Features, family: str, sector: str) -> _Driver | None:
    education = str(facts.get("education", ""))
    if family not in COURSES or not education:
        return None
    level = education.replace("_", " ")
    if education in _LOW_EDUCATION:
        return 2.4, f"Education ({level}): a course can add the qualifications employers ask for."
    return 0.8, f"Education ({level}): already well educated, so a long course adds less."


def _history_driver(facts: Features, family: str, sector: str) -> _Driver | None:
    b = int(facts.get("benefit_history_weeks", 0))
    if b < _LONG_HISTORY:
        return None
    text = (
        f"{b} weeks on benefits in the three years before this spell: a work placement or a "
        "mentor can help break the pattern."
    )
    return (2.2 if family in WORK_BASED or family == "mentor" else 1.0), text


_DRIVERS: tuple[Callable[[Features, str, str], _Driver | None], ...] = (
    _weeks_driver,
    _sector_driver,
    _demand_driver,
    _education_driver,
    _history_driver,
)


REFERENCE_FACTS: Mapping[str, FeatureValue | None] = {
    "weeks_unemployed": 4,
    "education": "upper_secondary",
    "last_sector": None,
    "labour_demand_index": 1.0,
    "benefit_history_weeks": 0,
}
"""A typical case to compare with: a fact's effect is the estimate with the citizen's value
minus the estimate with this one (``None``: the fact left out)."""
MIN_EFFECT = 0.005
"""Effects smaller than half a percentage point are not named as drivers."""


def _fact_phrase(name: str, value: FeatureValue, sector: str) -> str:
    """A plain statement of one whitelisted case fact."""
    if name == "weeks_unemployed":
        return f"Unemployed for {int(value)} weeks"
    if name == "education":
        return f"Education: {str(value).replace('_', ' ')}"
    if name == "last_sector":
        last = str(value).replace("_", " ")
        same = " (the offer's sector)" if str(value) == sector else ""
        return f"Last job in {last}{same}"
    if name == "labour_demand_index":
        return f"Local demand of {float(value):.1f} vacancies per unemployed person"
    return f"{int(value)} weeks on benefits in the three years before this spell"


def feature_effects(estimate: Callable[[Features], float], context: Features) -> dict[str, float]:
    """How much each whitelisted case fact moves ``estimate(context)``.

    For each fact in :data:`DRIVER_FEATURES` present in ``context``: the estimate minus the
    estimate with the fact set to its :data:`REFERENCE_FACTS` value (or left out). Protected
    and sensitive facts are never varied or named.

    Examples
    --------
    >>> est = lambda ctx: 0.5 + 0.01 * float(ctx.get("weeks_unemployed", 0))
    >>> feature_effects(est, {"weeks_unemployed": 30, "gender": "female"})
    {'weeks_unemployed': 0.26}
    """
    return feature_effects_many(lambda ctx: (estimate(ctx),), context, 1)[0]


def feature_effects_many(
    estimate: Callable[[Features], Sequence[float]],
    context: Features,
    n: int,
    *,
    base: Sequence[float] | None = None,
) -> list[dict[str, float]]:
    """:func:`feature_effects` of ``n`` offers at once: ``estimate(context)`` returns the
    ``n`` offers' estimates in one model call (one multi-action prediction per varied fact,
    instead of one per fact and offer), so explaining a shortlist costs ``1 + facts`` calls,
    or ``facts`` calls when the caller passes ``base``, the ``n`` estimates for ``context``
    itself that it already has (e.g. the decision's own scores).

    Raises
    ------
    ValueError
        When ``base`` is given and does not hold ``n`` estimates.

    Examples
    --------
    >>> est = lambda ctx: (0.5 + 0.01 * float(ctx.get("weeks_unemployed", 0)), 0.3)
    >>> feature_effects_many(est, {"weeks_unemployed": 30}, 2)
    [{'weeks_unemployed': 0.26}, {'weeks_unemployed': 0.0}]
    >>> feature_effects_many(est, {"weeks_unemployed": 30}, 2, base=(0.9, 0.3))
    [{'weeks_unemployed': 0.36}, {'weeks_unemployed': 0.0}]
    """
    if base is None:
        base = estimate(context)
    elif len(base) != n:
        msg = f"base holds {len(base)} estimates for {n} offers"
        raise ValueError(msg)
    out: list[dict[str, float]] = [{} for _ in range(n)]
    for name in DRIVER_FEATURES:
        if name not in context:
            continue
        reference = REFERENCE_FACTS[name]
        if reference is not None and context[name] == reference:
            continue
        if reference is None:
            changed = {k: v for k, v in context.items() if k != name}
        else:
            changed = {**context, name: reference}
        values = estimate(changed)
        for j in range(n):
            out[j][name] = round(float(base[j]) - float(values[j]), 6)
    return out


def drivers(
    facts: Features,
    family: str,
    sector: str,
    *,
    limit: int = 3,
    effects: Mapping[str, float] | None = None,
) -> tuple[str, ...]:
    """The most relevant reasons (at most ``limit``) for an offer, from whitelisted facts only.

    With ``effects`` (:func:`feature_effects` of the model's estimate), the facts that move
    the estimate most are named, each with the size of its effect; otherwise fixed relevance
    rules choose.

    Examples
    --------
    >>> drivers({"weeks_unemployed": 4, "gender": "female"}, "mentor", "any")
    ('Early in the spell (4 weeks): many find work soon on their own, so short offers with little lock-in fit best.',)
    >>> drivers({"weeks_unemployed": 30}, "mentor", "any", effects={"weeks_unemployed": -0.04})[0]
    'Unemployed for 30 weeks: lowers the expected chance of a job with this offer by about 4 points'
    """
    allowed = {k: facts[k] for k in DRIVER_FEATURES if k in facts}
    if effects is not None:
        named = []
        for name, value in allowed.items():
            effect = float(effects.get(name, 0.0))
            if abs(effect) < MIN_EFFECT:
                continue
            move = "raises" if effect > 0 else "lowers"
            text = (
                f"{_fact_phrase(name, value, sector)}: {move} the expected chance of a job with "
                f"this offer by about {max(abs(effect) * 100, 1):.0f} points"
            )
            named.append((abs(effect), text))
        named.sort(key=lambda d: -d[0])
        if named:
            return tuple(text for _, text in named[:limit])
    found = [d for rule in _DRIVERS if (d := rule(allowed, family, sector)) is not None]
    found.sort(key=lambda d: -d[0])
    texts = tuple(text for _, text in found[:limit])
    return texts or ("Few case facts available: the estimate rests on similar offers overall.",)
