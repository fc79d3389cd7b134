"""Recommendation, receipt, outcome and calibration parity per protected group and need group.

The monitor (:mod:`service.monitor`) hands this module one :class:`MonitoredDecision` per
treatment-arm decision of a window; :func:`parity_report` returns, per *measure*, *dimension*
and *group*, the rate and the number of decisions behind it, and per measure and dimension the
smallest rate over the largest (the four-fifths rule of disparate-impact audits) and the gap
between them, counting only groups with at least ``min_group_size`` decisions.

Measures (treatment arm, the one the policy acts on):

``recommendation``
    Share of live decisions whose recommended offer is of a scarce family
    (``Settings.monitor_scarce_families``: private wage subsidies and internships by default).
``receipt``
    Share of decisions with a recorded assignment that were assigned a scarce family.
``employment``
    Employment within the horizon among settled, uncensored decisions whose outcome is known
    at the analysis date (information time, as in :mod:`service.summary`).
``predicted_employment``
    The serving model's expected employment for the offer received (else recommended), over
    the same decisions as ``employment``: the difference is the group's calibration error.

Dimensions and their groups are a fixed list (bounded metric labels): the protected attributes
``gender`` and ``origin`` (``unknown`` when not sent) and the need groups ``need_quartile`` (the
model's expected employment under the baseline offer, standard contact, in quartiles of the
window: ``q1`` is the highest need), ``long_term_unemployed`` (52 weeks or more in the spell)
and ``target_group``. Protected attributes are read here (and in the researcher export) only:
they are never model features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

NEED_QUARTILES = ("q1", "q2", "q3", "q4")
"""``q1``: the lowest expected employment without intervention (the highest need)."""

DIMENSIONS: Mapping[str, tuple[str, ...]] = {
    "gender": ("female", "male", "other", "unknown"),
    "origin": ("danish", "western", "non_western", "unknown"),
    "need_quartile": NEED_QUARTILES,
    "long_term_unemployed": ("yes", "no"),
    "target_group": ("dagpenge", "kontanthjaelp"),
}
"""Every dimension and its groups: the only label values the parity metrics take."""

MEASURES = ("recommendation", "receipt", "employment", "predicted_employment")
RATE_MEASURES = ("recommendation", "receipt", "employment")
"""Measures compared by the smallest-over-largest ratio (calibration is compared as a gap)."""

LONG_TERM_WEEKS = 52


@dataclass(frozen=True, slots=True)
class MonitoredDecision:
    """What the parity monitor needs of one treatment-arm decision.

    Parameters
    ----------
    groups
        Group per dimension except ``need_quartile`` (assigned by :func:`parity_report`).
    need_score
        Expected employment without intervention (lower = more need); ``None`` if unknown.
    recommended_scarce
        Whether the recommendation is of a scarce family; ``None`` without a shown
        recommendation (shadow, kill switch).
    received_scarce
        Whether the assignment is of a scarce family; ``None`` before an assignment.
    employed
        The known outcome (``None`` unless settled, uncensored and known at the analysis date).
    predicted
        The model's expected employment of the offer received (``None`` when ``employed`` is).
    """

    groups: Mapping[str, str]
    need_score: float | None = None
    recommended_scarce: bool | None = None
    received_scarce: bool | None = None
    employed: bool | None = None
    predicted: float | None = None


@dataclass(frozen=True, slots=True)
class GroupRate:
    """A rate and the number of decisions behind it."""

    n: int
    rate: float


@dataclass
class ParityReport:
    """Rates per (measure, dimension, group); ratios, gaps and calibration errors per dimension.

    A ratio, gap or error is NaN when fewer than two groups (one for calibration) have
    ``min_group_size`` decisions, or when every rate is 0 (ratio).
    """

    rates: dict[tuple[str, str, str], GroupRate] = field(default_factory=dict)
    min_max_ratio: dict[tuple[str, str], float] = field(default_factory=dict)
    gap: dict[tuple[str, str], float] = field(default_factory=dict)
    calibration_error: dict[str, float] = field(default_factory=dict)


def need_quartiles(scores: Sequence[float]) -> list[str]:
    """The need quartile of each score within ``scores`` (``q1`` = the lowest scores).

    Ties share a quartile (the lowest one the tied value reaches).

    Examples
    --------
    >>> need_quartiles([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    ['q1', 'q1', 'q2', 'q2', 'q3', 'q3', 'q4', 'q4']
    >>> need_quartiles([0.3, 0.3, 0.3])
    ['q1', 'q1', 'q1']
    """
    if not scores:
        return []
    values = np.asarray(scores, dtype=float)
    edges = np.quantile(values, [0.25, 0.5, 0.75])
    index = np.searchsorted(edges, values, side="left")
    return [NEED_QUARTILES[int(i)] for i in index]


def _outcome(
    d: MonitoredDecision, measure: str
) -> float | None:  # the decision's value for one measure
    if measure == "recommendation":
        return None if d.recommended_scarce is None else float(d.recommended_scarce)
    if measure == "receipt":
        return None if d.received_scarce is None else float(d.received_scarce)
    if measure == "employment":
        return None if d.employed is None or d.predicted is None else float(d.employed)
    return None if d.employed is None or d.predicted is None else d.predicted


def _with_need(decisions: Sequence[MonitoredDecision]) -> list[dict[str, str]]:
    scored = [i for i, d in enumerate(decisions) if d.need_score is not None]
    quartile = dict(
        zip(scored, need_quartiles([decisions[i].need_score or 0.0 for i in scored]), strict=True)
    )
    out = []
    for i, d in enumerate(decisions):
        groups = dict(d.groups)
        if i in quartile:
            groups["need_quartile"] = quartile[i]
        out.append(groups)
    return out


def parity_report(decisions: Iterable[MonitoredDecision], *, min_group_size: int) -> ParityReport:
    """Parity of every measure over every dimension (see the module docstring).

    Examples
    --------
    >>> ds = [MonitoredDecision({"gender": "male"}, recommended_scarce=True)] * 4
    >>> ds += [MonitoredDecision({"gender": "female"}, recommended_scarce=i == 0) for i in range(4)]
    >>> report = parity_report(ds, min_group_size=4)
    >>> report.rates[("recommendation", "gender", "female")]
    GroupRate(n=4, rate=0.25)
    >>> report.min_max_ratio[("recommendation", "gender")], report.gap[("recommendation", "gender")]
    (0.25, 0.75)
    """
    items = list(decisions)
    groups_of = _with_need(items)
    sums: dict[tuple[str, str, str], list[float]] = {}
    for d, groups in zip(items, groups_of, strict=True):
        for measure in MEASURES:
            value = _outcome(d, measure)
            if value is None:
                continue
            for dimension, group in groups.items():
                if dimension in DIMENSIONS and group in DIMENSIONS[dimension]:
                    acc = sums.setdefault((measure, dimension, group), [0.0, 0.0])
                    acc[0] += 1
                    acc[1] += value
    report = ParityReport(
        rates={k: GroupRate(int(n), s / n) for k, (n, s) in sums.items() if n > 0}
    )
    for dimension, labels in DIMENSIONS.items():
        for measure in MEASURES:
            rates = [
                r.rate
                for g in labels
                if (r := report.rates.get((measure, dimension, g))) is not None
                and r.n >= min_group_size
            ]
            enough = len(rates) >= 2  # noqa: PLR2004
            low, high = (min(rates), max(rates)) if enough else (math.nan, math.nan)
            report.gap[(measure, dimension)] = high - low
            report.min_max_ratio[(measure, dimension)] = low / high if high > 0 else math.nan
        report.calibration_error[dimension] = _calibration_error(report, dimension, min_group_size)
    return report


def _calibration_error(report: ParityReport, dimension: str, min_group_size: int) -> float:
    errors = []
    for group in DIMENSIONS[dimension]:
        observed = report.rates.get(("employment", dimension, group))
        predicted = report.rates.get(("predicted_employment", dimension, group))
        if observed is not None and predicted is not None and observed.n >= min_group_size:
            errors.append(abs(predicted.rate - observed.rate))
    return max(errors) if errors else math.nan


def long_term_group(weeks_unemployed: object) -> str:
    """``yes`` for 52 weeks or more in the spell, else ``no``.

    Examples
    --------
    >>> long_term_group(60), long_term_group(3), long_term_group(None)
    ('yes', 'no', 'no')
    """
    weeks = weeks_unemployed if isinstance(weeks_unemployed, int | float) else 0
    return "yes" if weeks >= LONG_TERM_WEEKS else "no"
