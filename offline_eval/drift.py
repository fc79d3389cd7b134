"""Drift: population stability of the context features and the model's calibration per window.

Population stability index (PSI) of one feature between a reference window and the current
window: ``sum_b (c_b - r_b) ln(c_b / r_b)`` over bins ``b``, with ``r_b``, ``c_b`` the shares
of each window in the bin. Numeric features are binned at the reference window's deciles
(``bins`` quantiles; repeated edges merged), categorical ones by category. Shares are smoothed
with half a count per bin (``(k + 0.5) / (n + 0.5 B)``), so an empty bin gives a large but finite
index. The usual reading (Siddiqi 2006; Yurdakul 2018): below 0.1 stable, 0.1-0.25 a moderate
shift, above 0.25 a major one; the alert rule ``NbiFeatureDrift`` fires above 0.25.

Calibration: the mean of the model's expected employment against the observed employment rate
over settled outcomes known at the analysis date (a window shifted back by horizon + report
lag, as in :mod:`service.summary`).

Used by the service's monitor (:mod:`service.monitor`, as metrics) and by ``nbi report`` (the
parity and drift section, :mod:`offline_eval.report_monitoring`).

References
----------
Siddiqi, N. (2006). Credit Risk Scorecards. Wiley, 136-138.
Yurdakul, B. (2018). Statistical properties of population stability index. PhD thesis,
Western Michigan University.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

NUMERIC_FEATURES = ("age", "weeks_unemployed", "benefit_history_weeks", "labour_demand_index")
CATEGORICAL_FEATURES = (
    "target_group",
    "education",
    "last_sector",
    "danish_proficiency",
    "health_limitation",
    "single_parent",
)
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
"""The monitored context features (a fixed list: the metric's ``feature`` label). CV tokens
are free text and not monitored."""

_SMOOTHING = 0.5


def _shares(counts: np.ndarray) -> np.ndarray:
    shares: np.ndarray = (counts + _SMOOTHING) / (counts.sum() + _SMOOTHING * len(counts))
    return shares


def psi_from_counts(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> float:
    """PSI of two histograms over the same bins (half-count smoothing).

    Examples
    --------
    >>> psi_from_counts([50, 50], [50, 50])
    0.0
    >>> round(psi_from_counts([80, 20], [20, 80]), 3)
    1.625
    """
    r = _shares(np.asarray(reference, dtype=float))
    c = _shares(np.asarray(current, dtype=float))
    return float(np.sum((c - r) * np.log(c / r)))


def psi_numeric(reference: Sequence[float], current: Sequence[float], bins: int) -> float:
    """PSI of a numeric feature, binned at the reference's quantiles."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    return psi_from_counts(ref_counts, cur_counts)


def psi_categorical(reference: Sequence[str], current: Sequence[str]) -> float:
    """PSI of a categorical feature (bins: every category seen in either window).

    Examples
    --------
    >>> psi_categorical(["a", "b"] * 50, ["a", "b"] * 50)
    0.0
    """
    categories = sorted(set(reference) | set(current))
    ref = np.array([sum(1 for v in reference if v == k) for k in categories], dtype=float)
    cur = np.array([sum(1 for v in current if v == k) for k in categories], dtype=float)
    return psi_from_counts(ref, cur)


def feature_psi(
    reference: Sequence[Mapping[str, object]],
    current: Sequence[Mapping[str, object]],
    *,
    bins: int,
    min_decisions: int,
) -> dict[str, float]:
    """PSI of every monitored feature; NaN when either window has fewer than ``min_decisions``.

    A missing feature counts as its own category (``"missing"``; numeric: NaN is not binned,
    so such rows are left out of that feature).
    """
    if len(reference) < min_decisions or len(current) < min_decisions:
        return dict.fromkeys(FEATURES, math.nan)
    out: dict[str, float] = {}
    for name in NUMERIC_FEATURES:
        ref = _numbers(reference, name)
        cur = _numbers(current, name)
        out[name] = psi_numeric(ref, cur, bins) if ref and cur else math.nan
    for name in CATEGORICAL_FEATURES:
        out[name] = psi_categorical(
            [str(c.get(name, "missing")) for c in reference],
            [str(c.get(name, "missing")) for c in current],
        )
    return out


def _numbers(rows: Sequence[Mapping[str, object]], name: str) -> list[float]:
    """The finite numeric values of ``name`` (numpy scalars included; missing/NaN left out)."""
    values = (r.get(name) for r in rows)
    return [
        float(v)
        for v in values
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
    ]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Mean predicted vs observed employment over one window's known outcomes."""

    n: int
    predicted: float
    observed: float

    @property
    def error(self) -> float:
        """``|predicted - observed|`` (NaN without outcomes)."""
        return abs(self.predicted - self.observed)


def calibration(pairs: Sequence[tuple[float, bool]]) -> Calibration:
    """Calibration of ``(predicted, employed)`` pairs.

    Examples
    --------
    >>> calibration([(0.5, True), (0.3, False)])
    Calibration(n=2, predicted=0.4, observed=0.5)
    >>> calibration([]).n
    0
    """
    if not pairs:
        return Calibration(0, math.nan, math.nan)
    predicted = sum(p for p, _ in pairs) / len(pairs)
    observed = sum(1 for _, e in pairs if e) / len(pairs)
    return Calibration(len(pairs), predicted, observed)
