"""Instrumental-variable (Wald / 2SLS) effect on compliers under two-sided non-compliance.

The random assignment ``z`` (1 = recommender arm) is the instrument for ``d``, whether the
citizen received what the recommender arm offers, taken as recorded in BOTH arms: caseworkers
also assign programmes to control citizens, so ``d`` may be 1 in the control arm. With one
binary instrument and a constant, 2SLS is the Wald ratio ``LATE = ITT_y / ITT_d``.

Standard errors are the heteroskedasticity-robust 2SLS sandwich without a small-sample factor,
i.e. linearmodels' ``IV2SLS(...).fit(cov_type="robust")`` (``debiased=False``). For this design
it equals the delta method with within-arm variances divided by ``n`` (not ``n - 1``)::

    u_i = y_i - LATE d_i,   Var(LATE) = (var_t(u) / n_t + var_c(u) / n_c) / ITT_d^2.

First-stage strength is the robust Wald statistic of the instrument in ``d ~ 1 + z`` (one
instrument, so the robust first-stage F equals this chi-square(1) statistic, linearmodels'
``first_stage.diagnostics["f.stat"]``); below 10 the instrument is conventionally weak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from offline_eval.stats import Effect

WEAK_INSTRUMENT_F = 10.0


@dataclass(frozen=True)
class FirstStage:
    """``d ~ 1 + z``: the difference in received rates with its robust (HC0) SE and F."""

    difference: float
    se: float
    f_stat: float
    p_value: float

    @property
    def weak(self) -> bool:
        """True when the robust first-stage F is below 10 (or undefined)."""
        return not self.f_stat >= WEAK_INSTRUMENT_F

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "difference": self.difference,
            "se": self.se,
            "f_stat": self.f_stat,
            "p_value": self.p_value,
            "weak": self.weak,
        }


@dataclass(frozen=True)
class Compliance:
    """Received rates by arm, the first stage and the Wald/2SLS effect on compliers."""

    rate_treatment: float
    rate_control: float
    late: Effect
    first_stage: FirstStage
    se_method: str = "2SLS robust (HC0), as linearmodels IV2SLS cov_type='robust'"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "rate_treatment": self.rate_treatment,
            "rate_control": self.rate_control,
            "late": self.late.to_dict(),
            "first_stage": self.first_stage.to_dict(),
            "se_method": self.se_method,
        }


def _hc0_difference(x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Difference in arm means of ``x`` and its HC0 SE (within-arm variances over ``n``)."""
    xt, xc = x[z], x[~z]
    diff = float(xt.mean() - xc.mean())
    return diff, math.sqrt(float(xt.var()) / xt.shape[0] + float(xc.var()) / xc.shape[0])


def first_stage(assigned: np.ndarray, received: np.ndarray) -> FirstStage:
    """Robust first stage of ``received`` on the assignment.

    Examples
    --------
    >>> z = np.array([1, 1, 1, 1, 0, 0, 0, 0]); d = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    >>> fs = first_stage(z, d)
    >>> fs.difference, round(fs.f_stat, 4)  # 0.75 - 0.25; se^2 = 2 * 0.1875 / 4
    (0.5, 2.6667)
    """
    from scipy import stats

    z = np.asarray(assigned).astype(bool)
    diff, se = _hc0_difference(np.asarray(received, dtype=float), z)
    f_stat = (diff / se) ** 2 if se > 0 else (math.inf if diff != 0 else math.nan)
    p = float(stats.chi2.sf(f_stat, df=1)) if math.isfinite(f_stat) else (0.0 if diff else math.nan)
    return FirstStage(diff, se, f_stat, p)


def wald_iv(
    outcome: np.ndarray, assigned: np.ndarray, received: np.ndarray, alpha: float = 0.05
) -> Compliance:
    """Wald/2SLS estimator ``ITT_y / ITT_d`` with the robust 2SLS SE (module docstring).

    ``received`` is used as given in both arms (two-sided non-compliance). When the arms
    receive at the same rate the effect is undefined (NaN).

    Examples
    --------
    >>> z = np.array([1, 1, 1, 1, 0, 0, 0, 0]); d = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    >>> y = np.array([1, 1, 0, 1, 1, 0, 0, 0])
    >>> c = wald_iv(y, z, d)
    >>> c.rate_treatment, c.rate_control, c.late.estimate  # (0.75 - 0.25) / (0.75 - 0.25)
    (0.75, 0.25, 1.0)
    """
    z = np.asarray(assigned).astype(bool)
    y, d = np.asarray(outcome, dtype=float), np.asarray(received, dtype=float)
    n_t, n_c = int(z.sum()), int((~z).sum())
    if n_t < 2 or n_c < 2:  # noqa: PLR2004
        nan = math.nan
        stage = FirstStage(nan, nan, nan, nan)
        late = Effect(nan, nan, nan, nan, nan, n_t, n_c)
        return Compliance(nan, nan, late, stage)
    stage = first_stage(z, d)
    itt_y = float(y[z].mean() - y[~z].mean())
    if stage.difference == 0:
        late = Effect(math.nan, math.nan, math.nan, math.nan, math.nan, n_t, n_c)
    else:
        beta = itt_y / stage.difference
        _, se_u = _hc0_difference(y - beta * d, z)
        late = Effect.from_se(beta, se_u / abs(stage.difference), n_t, n_c, alpha)
    return Compliance(float(d[z].mean()), float(d[~z].mean()), late, stage)
