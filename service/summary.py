"""The running RCT summary in information time: employment rates per arm with Wilson intervals.

An interim (or final) analysis counts only outcomes *known at the analysis date*: decisions
made at least ``horizon + report lag`` weeks earlier (``Settings.horizon_weeks`` and
``Settings.report_lag_weeks``), settled and not censored. Younger decisions are pending even
when a job was already reported for some of them: their zeros are not known yet, so counting the
early jobs would bias the contrast towards the arm whose jobs come sooner and overstate the
precision. The arms' running counters (decisions, settled, censored, employed) are shown too.
With ``Settings.simulated_time`` (weeks pass in seconds) the clock says nothing about weeks,
so every settled outcome counts and the note says so.

The difference treatment - control gets Newcombe's hybrid score interval (method 10 of
Newcombe 1998), which keeps its coverage for small counts and rates near 0 or 1.

References
----------
Newcombe, R. G. (1998). Interval estimation for the difference between independent
proportions: comparison of eleven methods. Statistics in Medicine 17, 873-890.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from bandit.control import ExperimentConfig
from bandit.records import DecisionRecord
from service.schemas import ArmSummary, ExperimentSummary
from service.store.base import GroupCounts, employed_within_horizon

Z95 = 1.959963984540054
WEEK_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class KnownCounts:
    """Outcomes known at the analysis date, for one arm.

    ``analysed``: decisions old enough (horizon + lag), settled and not censored; ``employed``
    among them; ``pending``: every other decision that is not censored (too young, or old
    enough but not settled yet).
    """

    analysed: int = 0
    employed: int = 0
    pending: int = 0


def known_counts(
    records: Iterable[DecisionRecord],
    *,
    now: float,
    horizon_weeks: float,
    lag_weeks: float,
    simulated_time: bool = False,
) -> dict[str, KnownCounts]:
    """Per arm, the outcomes known at ``now`` (Unix seconds) in information time.

    Examples
    --------
    >>> from bandit.control import Group
    >>> from bandit.rewards import Outcome, OutcomeStatus
    >>> def rec(i, t, employed):
    ...     r = DecisionRecord(f"e{i}", t, "c", Group.CONTROL, {}, ("a",), (), None, None, "m", "p")
    ...     status = OutcomeStatus.EMPLOYED if employed else OutcomeStatus.UNEMPLOYED_AT_HORIZON
    ...     weeks = 3.0 if employed else None
    ...     return r.with_outcome(Outcome(status, weeks_to_job=weeks), float(employed), censored=False)
    >>> week = WEEK_SECONDS
    >>> now = 40 * week
    >>> rs = [rec(1, 0.0, True), rec(2, 0.0, False), rec(3, 30 * week, True)]  # e3: too young
    >>> known_counts(rs, now=now, horizon_weeks=26, lag_weeks=6)["control"]
    KnownCounts(analysed=2, employed=1, pending=1)
    """
    cutoff = now - (horizon_weeks + lag_weeks) * WEEK_SECONDS
    out: dict[str, list[int]] = {"treatment": [0, 0, 0], "control": [0, 0, 0]}
    for record in records:
        if record.censored:
            continue
        group = record.group.value if hasattr(record.group, "value") else str(record.group)
        row = out.setdefault(group, [0, 0, 0])
        if record.settled and (simulated_time or record.timestamp <= cutoff):
            row[0] += 1
            row[1] += employed_within_horizon(record.reward, censored=record.censored)
        else:
            row[2] += 1
    return {g: KnownCounts(*v) for g, v in out.items()}


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


def arm_summary(counts: GroupCounts, known: KnownCounts | None = None) -> ArmSummary:
    """Running counters of one arm and its employment rate over the known outcomes.

    Without ``known`` every settled, uncensored outcome counts (no information time).
    """
    if known is None:
        n = counts.settled - counts.censored
        known = KnownCounts(n, counts.employed, counts.decisions - counts.settled)
    rate, low, high = None, None, None
    if known.analysed > 0:
        rate = known.employed / known.analysed
        low, high = wilson(known.employed, known.analysed)
    return ArmSummary(
        decisions=counts.decisions,
        settled=counts.settled,
        censored=counts.censored,
        employed=counts.employed,
        analysed=known.analysed,
        analysed_employed=known.employed,
        pending=known.pending,
        employment_rate=rate,
        ci_low=low,
        ci_high=high,
    )


def experiment_summary(
    counts: dict[str, GroupCounts],
    experiment: ExperimentConfig,
    horizon_weeks: int,
    *,
    known: dict[str, KnownCounts] | None = None,
    lag_weeks: float = 0.0,
    analysis_time: float | None = None,
    simulated_time: bool = False,
) -> ExperimentSummary:
    """Treatment vs control in information time (``known``, from :func:`known_counts`)."""
    empty = GroupCounts(0, 0, 0, 0)
    treatment = arm_summary(
        counts.get("treatment", empty), None if known is None else known.get("treatment")
    )
    control = arm_summary(
        counts.get("control", empty), None if known is None else known.get("control")
    )
    diff = low = high = None
    if treatment.analysed > 0 and control.analysed > 0:
        diff, low, high = newcombe(
            treatment.analysed_employed,
            treatment.analysed,
            control.analysed_employed,
            control.analysed,
        )
    if simulated_time:
        when = "simulated time: every settled outcome counts (the clock says nothing about weeks)"
    else:
        when = (
            f"information time: only decisions made at least {horizon_weeks} + "
            f"{lag_weeks:g} weeks (horizon + report lag) before the analysis date count"
        )
    return ExperimentSummary(
        experiment=experiment.fingerprint,
        control_share=experiment.control_share,
        horizon_weeks=horizon_weeks,
        report_lag_weeks=lag_weeks,
        analysis_time=analysis_time,
        treatment=treatment,
        control=control,
        difference=diff,
        difference_ci_low=low,
        difference_ci_high=high,
        note=(
            f"Interim, intention-to-treat by arm; {when}; settled, uncensored decisions only "
            "('analysed'; the rest are 'pending'). Employment means a job within the horizon "
            "(reward 1). Not the pre-registered analysis."
        ),
    )
