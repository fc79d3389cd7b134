"""RCT analysis of the outer experiment (recommender vs no recommender).

Intention-to-treat difference with Neyman SE; Lin (2013) covariate adjustment with HC2/HC3
robust SE; compliance and the Wald/IV effect on compliers (delta method); a sample-ratio
mismatch check against the configured control share; power and MDE (domain.md 3.2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from bandit.errors import InvalidInputError
from offline_eval.stats import Effect, neyman_difference, z_value


def itt(outcome: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> Effect:
    """ITT effect: ``mean(y | treatment) - mean(y | control)`` with the Neyman SE."""
    t = treated.astype(bool)
    return neyman_difference(outcome[t].astype(float), outcome[~t].astype(float), alpha)


def lin_adjusted(
    outcome: np.ndarray,
    treated: np.ndarray,
    covariates: np.ndarray,
    *,
    alpha: float = 0.05,
    hc: Literal["HC2", "HC3"] = "HC2",
) -> Effect:
    """Lin's regression ``y ~ 1 + T + Xc + T*Xc`` (``Xc`` centred) with HC2/HC3 robust SE on T.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)); t = rng.random(2000) < 0.5
    >>> y = 0.3 * t + x[:, 0] + rng.normal(scale=0.5, size=2000)
    >>> e = lin_adjusted(y, t, x)
    >>> bool(e.ci_low < 0.3 < e.ci_high), bool(e.se < itt(y, t).se)
    (True, True)
    """
    t = treated.astype(float)
    x = np.asarray(covariates, dtype=float).reshape(outcome.shape[0], -1)
    xc = x - x.mean(axis=0)
    design = np.column_stack([np.ones_like(t), t, xc, xc * t[:, None]])
    n_t, n_c = int(t.sum()), int((1 - t).sum())
    if design.shape[0] <= design.shape[1]:
        msg = f"Too few rows ({design.shape[0]}) for {design.shape[1]} regression terms"
        raise InvalidInputError(msg)
    bread = np.linalg.pinv(design.T @ design)
    beta = bread @ design.T @ outcome.astype(float)
    resid = outcome - design @ beta
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    power = 1.0 if hc == "HC2" else 2.0
    scale = resid**2 / np.clip(1.0 - leverage, 1e-12, None) ** power
    cov = bread @ (design.T * scale) @ design @ bread
    return Effect.from_se(float(beta[1]), math.sqrt(float(cov[1, 1])), n_t, n_c, alpha)


@dataclass(frozen=True)
class Compliance:
    """Compliance by arm and the Wald (IV) effect on compliers."""

    rate_treatment: float
    rate_control: float
    late: Effect

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def wald_iv(
    outcome: np.ndarray, assigned: np.ndarray, received: np.ndarray, alpha: float = 0.05
) -> Compliance:
    """Wald estimator ``ITT_y / ITT_d``; SE by the delta method.

    With ``beta = ITT_y / ITT_d`` and ``u_i = y_i - beta d_i`` the delta-method variance is
    ``(var_t(u)/n_t + var_c(u)/n_c) / ITT_d^2``.

    Examples
    --------
    >>> z = np.array([1, 1, 1, 1, 0, 0, 0, 0]); d = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    >>> y = np.array([1, 1, 0, 1, 0, 1, 0, 0])
    >>> c = wald_iv(y, z, d)
    >>> c.rate_treatment, c.late.estimate  # (0.75 - 0.25) / 0.5
    (0.5, 1.0)
    """
    z = assigned.astype(bool)
    y, d = outcome.astype(float), received.astype(float)
    itt_y = float(y[z].mean() - y[~z].mean())
    itt_d = float(d[z].mean() - d[~z].mean())
    n_t, n_c = int(z.sum()), int((~z).sum())
    if itt_d == 0 or n_t < 2 or n_c < 2:  # noqa: PLR2004
        late = Effect(math.nan, math.nan, math.nan, math.nan, math.nan, n_t, n_c)
    else:
        beta = itt_y / itt_d
        u = y - beta * d
        var = (float(u[z].var(ddof=1)) / n_t + float(u[~z].var(ddof=1)) / n_c) / itt_d**2
        late = Effect.from_se(beta, math.sqrt(var), n_t, n_c, alpha)
    return Compliance(float(d[z].mean()), float(d[~z].mean()), late)


@dataclass(frozen=True)
class SampleRatioCheck:
    """Observed vs configured control share, with a chi-square goodness-of-fit test."""

    n_control: int
    n_total: int
    observed_share: float
    expected_share: float
    chi2: float
    p_value: float
    mismatch: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def sample_ratio_check(
    n_control: int, n_total: int, expected_share: float, threshold: float = 0.001
) -> SampleRatioCheck:
    """Chi-square (1 df) test of the control count against ``expected_share``.

    Flags a mismatch when ``p < threshold`` (0.001 is the usual SRM alarm level).

    Examples
    --------
    >>> sample_ratio_check(2000, 10000, 0.2).mismatch, sample_ratio_check(2300, 10000, 0.2).mismatch
    (False, True)
    """
    from scipy import stats

    if not 0.0 < expected_share < 1.0 or n_total < 1:
        msg = f"Expected 0 < control share < 1 and rows, got {expected_share}, {n_total}"
        raise InvalidInputError(msg)
    exp_c = n_total * expected_share
    exp_t = n_total - exp_c
    chi2 = (n_control - exp_c) ** 2 / exp_c + (n_total - n_control - exp_t) ** 2 / exp_t
    p = float(stats.chi2.sf(chi2, df=1))
    return SampleRatioCheck(
        n_control, n_total, n_control / n_total, expected_share, float(chi2), p, p < threshold
    )


def mde(
    p: float,
    n_treatment: int,
    n_control: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    r_squared: float = 0.0,
) -> float:
    """Minimum detectable effect ``(z_{1-a/2} + z_power) sqrt(p(1-p)(1/n_c + 1/n_t)(1-R^2))``.

    Examples
    --------
    >>> round(100 * mde(0.6, 14400, 3600), 1)  # domain.md 3.2: dagpenge 6 months, 20 % control
    2.6
    """
    if n_treatment < 1 or n_control < 1:
        return math.nan
    k = z_value(alpha) + z_value(2.0 * (1.0 - power))
    return k * math.sqrt(p * (1 - p) * (1 / n_control + 1 / n_treatment) * (1 - r_squared))
