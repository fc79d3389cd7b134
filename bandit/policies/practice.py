""" "Practice as usual": a rule policy that mimics caseworkers' historical choices.

Family weights follow the Danish activation mix (domain.md 5.3: guidance and upskilling
0.66-0.72 of activation, public wage subsidy 0.13-0.16, internships 0.07-0.16, private wage
subsidy 0.03-0.08) and shift with the case: early in the spell mostly contact, meetings and
job-search help; later internships and wage subsidies; mentors for health limitations and
kontanthjælp; the 6-week course for the low-educated. Within a family every offer is equally
likely. It does not learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bandit.policies.base import StaticPolicy
from bandit.types import Action, Features

_EARLY_WEEKS = 13
_LONG_WEEKS = 26

BASE_FAMILY_WEIGHTS: Mapping[str, float] = {
    "standard_contact": 0.30,
    "individual_meetings": 0.16,
    "group_meetings": 0.06,
    "job_search_course": 0.10,
    "private_internship": 0.05,
    "public_internship": 0.05,
    "private_wage_subsidy": 0.03,
    "public_wage_subsidy": 0.07,
    "six_week_course": 0.06,
    "classroom_training": 0.08,
    "mentor": 0.04,
}


def family_weights(context: Features) -> dict[str, float]:
    """Caseworkers' family weights for this context (unnormalised)."""
    weights = dict(BASE_FAMILY_WEIGHTS)
    weeks = float(context.get("weeks_unemployed", 0))
    if weeks < _EARLY_WEEKS:
        for fam in ("standard_contact", "individual_meetings", "job_search_course"):
            weights[fam] *= 1.6
    elif weeks >= _LONG_WEEKS:
        for fam in ("private_internship", "public_internship", "public_wage_subsidy"):
            weights[fam] *= 2.0
        weights["private_wage_subsidy"] *= 1.5
        weights["standard_contact"] *= 0.5
    if context.get("target_group") == "kontanthjaelp":
        weights["mentor"] *= 2.5
        weights["public_internship"] *= 1.5
    if context.get("health_limitation"):
        weights["mentor"] *= 3.0
    if context.get("education") in ("lower_secondary", "vocational"):
        weights["six_week_course"] *= 1.5
    if context.get("danish_proficiency") in ("basic", "none"):
        weights["classroom_training"] *= 1.5
    return weights


class PracticeAsUsualPolicy(StaticPolicy):
    """Rule policy mimicking caseworkers; the logging policy of historical data.

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("m", {"family": "mentor"}), Action("c", {"family": "standard_contact"})]
    >>> pmf = PracticeAsUsualPolicy(floor=0.0).probabilities({"weeks_unemployed": 2}, acts)
    >>> bool(pmf[1] > pmf[0])
    True
    """

    name = "practice"

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        weights = family_weights(context)
        default = min(weights.values())
        names = list(weights)
        code_of = {name: i for i, name in enumerate(names)}
        codes = np.fromiter(
            (code_of.get(str(a.features.get("family", "")), len(names)) for a in actions),
            dtype=np.intp,
            count=len(actions),
        )
        per_family = np.asarray([*weights.values(), default])
        counts = np.bincount(codes, minlength=len(names) + 1)
        if counts[len(names)]:  # offers of unknown families: each its own family
            unknown = [str(a.features.get("family", "")) for a in actions]
            family_count: dict[str, int] = {}
            for fam in unknown:
                family_count[fam] = family_count.get(fam, 0) + 1
            return np.asarray(
                [weights.get(f, default) / family_count[f] for f in unknown], dtype=float
            )
        pmf: np.ndarray = per_family[codes] / counts[codes]
        return pmf
