"""The running RCT summary: employment rates per arm with Wilson intervals.

Only settled, uncensored decisions count (pending ones have no outcome yet; censored ones have
none). The difference treatment - control gets Newcombe's hybrid score interval (method 10 of
Newcombe 1998), which keeps its coverage for small counts and rates near 0 or 1.

References
----------
Newcombe, R. G. (1998). Interval estimation for the difference between independent
proportions: comparison of eleven methods. Statistics in Medicine 17, 873-890.
"""

from __future__ import annotations

import math

from bandit.control import ExperimentConfig
from service.schemas import ArmSummary, ExperimentSummary
from service.store.base import GroupCounts

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    Examples
    --------
    >>> [round(x, 4) for x in wilson(5, 10)]
    [0.2366, 0.7634]
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """Difference ``p1 - p2`` with Newcombe's hybrid score 95 % interval.

    Examples
    --------
    >>> [round(v, 4) for v in newcombe(56, 70, 48, 80)]
    [0.2, 0.0524, 0.3339]
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def arm_summary(counts: GroupCounts) -> ArmSummary:
    """Counts and employment rate of one arm."""
    n = counts.settled - counts.censored
    rate, low, high = None, None, None
    if n > 0:
        rate = counts.employed / n
        low, high = wilson(counts.employed, n)
    return ArmSummary(
        decisions=counts.decisions,
        settled=counts.settled,
        censored=counts.censored,
        employed=counts.employed,
        employment_rate=rate,
        ci_low=low,
        ci_high=high,
    )


def experiment_summary(
    counts: dict[str, GroupCounts], experiment: ExperimentConfig, horizon_weeks: int
) -> ExperimentSummary:
    """Treatment vs control so far."""
    empty = GroupCounts(0, 0, 0, 0)
    treatment = arm_summary(counts.get("treatment", empty))
    control = arm_summary(counts.get("control", empty))
    diff = low = high = None
    n1 = treatment.settled - treatment.censored
    n2 = control.settled - control.censored
    if n1 > 0 and n2 > 0:
        diff, low, high = newcombe(treatment.employed, n1, control.employed, n2)
    return ExperimentSummary(
        experiment=experiment.fingerprint,
        control_share=experiment.control_share,
        horizon_weeks=horizon_weeks,
        treatment=treatment,
        control=control,
        difference=diff,
        difference_ci_low=low,
        difference_ci_high=high,
        note=(
            "Interim, intention-to-treat by arm; settled and uncensored decisions only. "
            "Employment means a job within the horizon (reward 1). Not the pre-registered analysis."
        ),
    )
