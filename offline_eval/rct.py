"""RCT analysis of the outer experiment (recommender vs no recommender).

Intention-to-treat difference with Neyman SE; Lin (2013) covariate adjustment with HC2/HC3
robust SE (statsmodels' ``OLS(...).fit(cov_type="HC2"/"HC3")`` on the same design); a
sample-ratio mismatch check against the configured control share; power and MDE (domain.md
3.2) for a 0/1 or a continuous outcome. Compliance and the Wald/2SLS effect on compliers live in
:mod:`offline_eval.iv` (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from bandit.errors import InvalidInputError
from offline_eval.iv import Compliance, FirstStage, first_stage, wald_iv
from offline_eval.stats import Effect, neyman_difference

__all__ = [
    "Compliance",
    "FirstStage",
    "SampleRatioCheck",
    "first_stage",
    "itt",
    "lin_adjusted",
    "mde",
    "mde_continuous",
    "pooled_sd",
    "sample_ratio_check",
    "wald_iv",
]


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
class SampleRatioCheck:
    """Observed vs configured control share of the randomisation ``unit``.

    ``n_control`` / ``n_total`` count that unit (citizens, or clusters under cluster
    randomisation). ``chi2`` is Pearson's statistic on the counts; ``p_value`` comes from
    ``test``: the chi-square (1 df) test for citizens, the exact two-sided binomial test for
    clusters (a handful of job centres is too few for the chi-square approximation).
    """

    n_control: int
    n_total: int
    observed_share: float
    expected_share: float
    chi2: float
    p_value: float
    mismatch: bool
    unit: Literal["citizens", "clusters"] = "citizens"
    test: Literal["chi-square", "exact binomial"] = "chi-square"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def sample_ratio_check(
    n_control: int,
    n_total: int,
    expected_share: float,
    threshold: float = 0.001,
    *,
    unit: Literal["citizens", "clusters"] = "citizens",
) -> SampleRatioCheck:
    """Test of the control count against ``expected_share`` in the randomisation unit.

    Citizens: chi-square goodness of fit (1 df). Clusters (cluster randomisation, where the
    coin is tossed per cluster and the citizens of a cluster are not independent draws): the
    exact two-sided binomial test of the number of control clusters (scipy's ``binomtest``,
    the same as statsmodels' ``binom_test``). Flags a mismatch when ``p < threshold`` (0.001
    is the usual SRM alarm level).

    Examples
    --------
    >>> sample_ratio_check(2000, 10000, 0.2).mismatch, sample_ratio_check(2300, 10000, 0.2).mismatch
    (False, True)
    >>> round(sample_ratio_check(3, 12, 0.2, unit="clusters").p_value, 4)  # 3 of 12 job centres
    0.7165
    """
    from scipy import stats

    if not 0.0 < expected_share < 1.0:
        msg = f"Expected 0 < control share < 1, got {expected_share}"
        raise InvalidInputError(msg)
    if not 0 <= n_control <= n_total or n_total < 1:
        msg = f"Expected 0 <= control count <= total >= 1, got {n_control} of {n_total}"
        raise InvalidInputError(msg)
    exp_c = n_total * expected_share
    exp_t = n_total - exp_c
    chi2 = (n_control - exp_c) ** 2 / exp_c + (n_total - n_control - exp_t) ** 2 / exp_t
    if unit == "clusters":
        p = float(stats.binomtest(n_control, n_total, expected_share).pvalue)
        test: Literal["chi-square", "exact binomial"] = "exact binomial"
    else:
        p = float(stats.chi2.sf(chi2, df=1))
        test = "chi-square"
    return SampleRatioCheck(
        n_control,
        n_total,
        n_control / n_total,
        expected_share,
        float(chi2),
        p,
        p < threshold,
        unit,
        test,
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

    For a 0/1 outcome at the rate ``p`` (``nbi experiment`` passes the control-arm rate, the
    convention of :mod:`offline_eval.power`); :func:`mde_continuous` is the same formula with the
    outcome's pooled SD in place of ``sqrt(p(1-p))``.

    Examples
    --------
    >>> round(100 * mde(0.6, 14400, 3600), 1)  # domain.md 3.2: dagpenge 6 months, 20 % control
    2.6
    """
    if not 0.0 <= p <= 1.0:
        msg = f"mde() needs a rate 0 <= p <= 1, got {p}; use mde_continuous() for other outcomes"
        raise InvalidInputError(msg)
    return mde_continuous(
        math.sqrt(p * (1 - p)),
        n_treatment,
        n_control,
        alpha=alpha,
        power=power,
        r_squared=r_squared,
    )


def mde_continuous(
    sd: float,
    n_treatment: int,
    n_control: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    r_squared: float = 0.0,
) -> float:
    """MDE ``(z_{1-a/2} + z_power) sd sqrt((1/n_c + 1/n_t)(1-R^2))`` in the outcome's units.

    Examples
    --------
    >>> round(mde_continuous(10.0, 14400, 3600), 3)  # 2.8016 * 10 * sqrt(1/3600 + 1/14400)
    0.522
    """
    if n_treatment < 1 or n_control < 1 or not math.isfinite(sd) or sd < 0:
        return math.nan
    from offline_eval.power import mde as power_mde  # the one MDE convention

    if sd == 0:
        return 0.0
    return power_mde(sd * sd, n_treatment, n_control, alpha=alpha, power=power, r_squared=r_squared)


def pooled_sd(outcome: np.ndarray, treated: np.ndarray) -> float:
    """Pooled within-arm SD ``sqrt(((n_t-1) s_t^2 + (n_c-1) s_c^2) / (n_t + n_c - 2))``.

    Examples
    --------
    >>> pooled_sd(np.array([1.0, 3.0, 10.0, 14.0]), np.array([1, 1, 0, 0]))  # sqrt((2 + 8) / 2)
    2.23606797749979
    """
    t = np.asarray(treated).astype(bool)
    y = np.asarray(outcome, dtype=float)
    n_t, n_c = int(t.sum()), int((~t).sum())
    if n_t < 2 or n_c < 2:  # noqa: PLR2004
        return math.nan
    ss = (n_t - 1) * float(y[t].var(ddof=1)) + (n_c - 1) * float(y[~t].var(ddof=1))
    return math.sqrt(ss / (n_t + n_c - 2))
