"""Small statistical helpers shared by the RCT analysis and the fairness audit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()


def z_value(alpha: float) -> float:
    """Two-sided normal critical value, e.g. 1.96 for ``alpha = 0.05``."""
    return _NORMAL.inv_cdf(1.0 - alpha / 2.0)


def two_sided_p(z: float) -> float:
    """Two-sided normal p-value of a z statistic."""
    if not math.isfinite(z):
        return math.nan
    return 2.0 * (1.0 - _NORMAL.cdf(abs(z)))


def lower_p(z: float) -> float:
    """One-sided p-value for H1: effect < 0 (``Phi(z)``)."""
    return _NORMAL.cdf(z) if math.isfinite(z) else math.nan


@dataclass(frozen=True)
class Effect:
    """A difference with its standard error, interval and two-sided p-value."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treatment: int
    n_control: int

    @classmethod
    def from_se(cls, estimate: float, se: float, n_t: int, n_c: int, alpha: float) -> Effect:
        """Normal interval and p-value from an estimate and its SE."""
        z = z_value(alpha)
        stat = estimate / se if se > 0 else math.nan
        return cls(estimate, se, estimate - z * se, estimate + z * se, two_sided_p(stat), n_t, n_c)

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready dict."""
        return asdict(self)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control).

    A NaN p-value (a test that could not be run) stays NaN and is not counted: the number of
    tests ``m`` is the number of finite p-values.

    Examples
    --------
    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    >>> [round(p, 3) for p in holm([0.01, float("nan"), 0.04])]  # m = 2, not 3
    [0.02, nan, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape[0], math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.shape[0]
    running = 0.0
    for rank, idx in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * float(p[idx])))
        adjusted[idx] = running
    return [float(x) for x in adjusted]


def neyman_difference(y_t: np.ndarray, y_c: np.ndarray, alpha: float = 0.05) -> Effect:
    """Difference in means with the Neyman (unpooled) SE ``sqrt(s_t^2/n_t + s_c^2/n_c)``.

    Examples
    --------
    >>> e = neyman_difference(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]))
    >>> e.estimate, round(e.se, 4)  # sqrt(0.25/4 + 0.25/4)
    (0.5, 0.3536)
    """
    n_t, n_c = int(y_t.shape[0]), int(y_c.shape[0])
    if n_t < 2 or n_c < 2:  # noqa: PLR2004
        return Effect(math.nan, math.nan, math.nan, math.nan, math.nan, n_t, n_c)
    diff = float(y_t.mean() - y_c.mean())
    se = math.sqrt(float(y_t.var(ddof=1)) / n_t + float(y_c.var(ddof=1)) / n_c)
    return Effect.from_se(diff, se, n_t, n_c, alpha)
