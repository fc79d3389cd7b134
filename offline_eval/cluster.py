"""Analysis of a cluster-randomised trial: ITT with CR2 cluster-robust errors, ICC, design effect.

When the control arm is assigned by caseworker or job centre (``bandit.control``), citizens of
one cluster share the arm and, usually, part of the outcome; the citizen-level (Neyman, HC2)
standard errors are then too small. :func:`cluster_itt` gives the intention-to-treat effect

* as a difference in means (``y ~ 1 + T``), or
* Lin-adjusted (``y ~ 1 + T + Xc + T Xc``, ``Xc`` centred covariates),

with the Bell-McCaffrey **CR2** cluster-robust variance (Bell and McCaffrey 2002; Pustejovsky
and Tipton 2018), the default of R's clubSandwich and of estimatr's ``lm_robust(se_type="CR2")``,
and a t interval with the Bell-McCaffrey (Satterthwaite) degrees of freedom. CR2 is unbiased
when the errors are independent and homoskedastic and is close to unbiased otherwise; CR1 (the
Stata / statsmodels ``cov_type="cluster"`` correction ``G/(G-1) (N-1)/(N-K)``) is too small with
few or unequal clusters, which is the municipal case (a handful of job centres, tens of
caseworkers). CR1 with ``G - 1`` degrees of freedom is available for comparison.

For the difference in means with the arm fixed per cluster CR2 has a closed form:
``V = sum_{g in T} S_g^2 / (n_T^2 (1 - n_g/n_T)) + sum_{g in C} S_g^2 / (n_C^2 (1 - n_g/n_C))``
with ``S_g`` the cluster's sum of residuals (with equal sizes, the Neyman variance of cluster
means).

:func:`icc_anova` is the one-way ANOVA estimator of the intra-cluster correlation (clusters
nested in arms) and :func:`observed_design_effect` the CV-adjusted design effect of
:func:`offline_eval.power.design_effect` at the observed cluster sizes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from bandit.errors import InvalidInputError
from offline_eval.power import design_effect
from offline_eval.stats import Effect

SeType = Literal["CR2", "CR1"]
_LEVERAGE_MAX = 1.0 - 1e-10


@dataclass(frozen=True)
class ClusterFit:
    """A cluster-robust regression coefficient: estimate, SE, degrees of freedom, clusters."""

    estimate: float
    se: float
    df: float
    se_type: SeType
    n_clusters: int
    n_clusters_treatment: int
    n_clusters_control: int
    effect: Effect

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def _codes(clusters: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(clusters)
    if values.shape[0] != n:
        msg = f"Expected one cluster id per row, got {values.shape[0]} for {n} rows"
        raise InvalidInputError(msg)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        msg = "Expected a cluster id on every row, got missing values"
        raise InvalidInputError(msg)
    if values.dtype.kind == "O" and any(v is None for v in values):
        msg = "Expected a cluster id on every row, got missing values"
        raise InvalidInputError(msg)
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.reshape(-1)


def _outcome_and_arm(y: np.ndarray, treated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.asarray(y, dtype=float).reshape(-1)
    arm = np.asarray(treated).reshape(-1)
    if arm.shape[0] != out.shape[0]:
        msg = f"Expected one arm per row, got {arm.shape[0]} for {out.shape[0]} outcomes"
        raise InvalidInputError(msg)
    if not np.isfinite(out).all():
        msg = "Expected a finite outcome on every row"
        raise InvalidInputError(msg)
    if not np.isin(arm, (0, 1)).all():
        msg = "Expected the arm as 0 (control) or 1 (treatment) on every row"
        raise InvalidInputError(msg)
    return out, arm.astype(float)


def lin_design(treated: np.ndarray, covariates: np.ndarray | None) -> np.ndarray:
    """``[1, T]`` or Lin's ``[1, T, Xc, T Xc]`` with ``Xc`` centred at the overall mean."""
    t = np.asarray(treated, dtype=float).reshape(-1)
    if covariates is None:
        return np.column_stack([np.ones_like(t), t])
    x = np.asarray(covariates, dtype=float).reshape(t.shape[0], -1)
    if not np.isfinite(x).all():
        msg = "Expected finite covariates on every row"
        raise InvalidInputError(msg)
    xc = x - x.mean(axis=0)
    return np.column_stack([np.ones_like(t), t, xc, xc * t[:, None]])


def _adjustment(xg: np.ndarray, bread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``U, f`` with ``(I - H_gg)^{-1/2} = I + U diag(f) U'`` (``H_gg = X_g B X_g'``, low rank)."""
    q, r = np.linalg.qr(xg)
    lam, vec = np.linalg.eigh(r @ bread @ r.T)
    if lam.max(initial=0.0) >= _LEVERAGE_MAX:
        msg = (
            "CR2 needs at least two clusters in each arm (one cluster alone determines its "
            "arm's mean); randomise more clusters or use per-citizen randomisation"
        )
        raise InvalidInputError(msg)
    lam = np.clip(lam, 0.0, None)
    return q @ vec, 1.0 / np.sqrt(1.0 - lam) - 1.0


def _apply(u: np.ndarray, f: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.asarray(v + u @ (f * (u.T @ v)), dtype=float)


def cluster_regression(
    y: np.ndarray,
    design: np.ndarray,
    clusters: np.ndarray,
    *,
    coef: int = 1,
    se_type: SeType = "CR2",
) -> tuple[float, float, float]:
    """OLS coefficient ``coef`` of ``y ~ design`` with its cluster-robust SE and t df.

    Returns ``(estimate, se, df)``: CR2 with Bell-McCaffrey degrees of freedom
    ``(sum lambda)^2 / sum lambda^2`` over the eigenvalues of ``G'G`` (``G_g = (I - H)_g A_g X_g
    B e_coef``; Imbens and Kolesar 2016), or CR1 with ``G - 1``.

    Examples
    --------
    >>> y = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 6.0, 7.0])
    >>> t = np.array([0, 0, 0, 0, 1, 1, 1, 1]); g = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> est, se, df = cluster_regression(y, lin_design(t, None), g)
    >>> est, round(se, 4), round(df, 3)  # CR2 = Neyman on cluster means with equal sizes
    (3.5, 1.118, 2.0)
    """
    x = np.asarray(design, dtype=float)
    n, p = x.shape
    codes = _codes(clusters, n)
    n_groups = int(codes.max()) + 1 if n else 0
    if n <= p or n_groups < 2:  # noqa: PLR2004
        msg = f"Too few rows ({n}) or clusters ({n_groups}) for {p} regression terms"
        raise InvalidInputError(msg)
    bread = np.linalg.pinv(x.T @ x)
    beta = bread @ (x.T @ y)
    resid = y - x @ beta
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    members = np.split(order, bounds)
    scores = np.empty((n_groups, p))
    contrast = bread[:, coef]
    w_norm2 = np.empty(n_groups)
    b_vecs = np.empty((n_groups, p))
    for g, idx in enumerate(members):
        xg, eg = x[idx], resid[idx]
        if se_type == "CR2":
            u, f = _adjustment(xg, bread)
            scores[g] = xg.T @ _apply(u, f, eg)
            w = _apply(u, f, xg @ contrast)
            w_norm2[g] = float(w @ w)
            b_vecs[g] = xg.T @ w
        else:
            scores[g] = xg.T @ eg
    cov = bread @ (scores.T @ scores) @ bread
    if se_type == "CR1":
        cov *= n_groups / (n_groups - 1) * (n - 1) / (n - p)
        df = float(n_groups - 1)
    else:
        gram = np.diag(w_norm2) - b_vecs @ bread @ b_vecs.T
        lam = np.linalg.eigvalsh(gram)
        df = float(lam.sum() ** 2 / (lam**2).sum())
    return float(beta[coef]), math.sqrt(max(float(cov[coef, coef]), 0.0)), df


def cluster_fit(
    y: np.ndarray,
    treated: np.ndarray,
    clusters: np.ndarray,
    covariates: np.ndarray | None = None,
    *,
    alpha: float = 0.05,
    se_type: SeType = "CR2",
) -> ClusterFit:
    """ITT (difference in means, or Lin-adjusted with ``covariates``) with cluster-robust SE.

    The interval and p-value use the t distribution with the fit's degrees of freedom
    (Bell-McCaffrey for CR2, ``G - 1`` for CR1).
    """
    from scipy.stats import t as t_dist

    out, arm = _outcome_and_arm(y, treated)
    if se_type not in ("CR2", "CR1"):
        msg = f"Expected se_type CR2 or CR1, got {se_type!r}"
        raise InvalidInputError(msg)
    if not 0.0 < alpha < 1.0:
        msg = f"Expected 0 < alpha < 1, got {alpha}"
        raise InvalidInputError(msg)
    codes = _codes(clusters, out.shape[0])
    n_t, n_c = int(arm.sum()), int((1 - arm).sum())
    if n_t == 0 or n_c == 0:
        msg = f"Expected rows in both arms, got {n_t} treated and {n_c} control"
        raise InvalidInputError(msg)
    estimate, se, df = cluster_regression(out, lin_design(arm, covariates), codes, se_type=se_type)
    crit = float(t_dist.ppf(1.0 - alpha / 2.0, df))
    p_value = float(2.0 * t_dist.sf(abs(estimate / se), df)) if se > 0 else math.nan
    effect = Effect(estimate, se, estimate - crit * se, estimate + crit * se, p_value, n_t, n_c)
    return ClusterFit(
        estimate=estimate,
        se=se,
        df=df,
        se_type=se_type,
        n_clusters=int(codes.max()) + 1,
        n_clusters_treatment=int(np.unique(codes[arm == 1]).shape[0]),
        n_clusters_control=int(np.unique(codes[arm == 0]).shape[0]),
        effect=effect,
    )


def cluster_itt(
    y: np.ndarray,
    treated: np.ndarray,
    clusters: np.ndarray,
    covariates: np.ndarray | None = None,
    alpha: float = 0.05,
    se_type: SeType = "CR2",
) -> Effect:
    """The ITT :class:`~offline_eval.stats.Effect` of a cluster-randomised trial (CR2 default).

    Parameters
    ----------
    y
        Outcome per citizen (0/1 or continuous).
    treated
        Arm per citizen: 1 treatment, 0 control.
    clusters
        Randomisation cluster per citizen (pseudonymised caseworker or job centre id).
    covariates
        Pre-treatment covariates (rows x columns) for Lin's adjustment; ``None``: difference
        in means.
    alpha
        Two-sided level of the interval.
    se_type
        ``"CR2"`` (Bell-McCaffrey, default) or ``"CR1"`` (statsmodels' ``cov_type="cluster"``).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(40), 25); arm = (g % 2).astype(float)
    >>> y = 0.5 * arm + rng.normal(size=40)[g] + rng.normal(size=1000)
    >>> e = cluster_itt(y, arm, g)
    >>> bool(e.ci_low < 0.5 < e.ci_high), e.n_treatment
    (True, 500)
    """
    return cluster_fit(y, treated, clusters, covariates, alpha=alpha, se_type=se_type).effect


def icc_anova(y: np.ndarray, clusters: np.ndarray, treated: np.ndarray | None = None) -> float:
    """One-way ANOVA estimator of the intra-cluster correlation.

    ``ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW)`` with ``MSB`` the between-cluster and ``MSW``
    the within-cluster mean square and ``n0 = (N - sum n_g^2 / N) / (G - 1)`` (Donner 1986).
    With ``treated`` the clusters are nested in the arms: cluster means are compared with their
    arm's mean, ``MSB`` has ``G - a`` degrees of freedom (``a`` arms) and
    ``n0 = (N - sum_arms sum_g n_g^2 / N_arm) / (G - a)``; a cluster seen in both arms counts as
    one cluster per arm. The estimate can be negative (then the design effect uses 0).

    Examples
    --------
    >>> icc_anova(np.array([1.0, 1.0, 3.0, 3.0]), np.array([0, 0, 1, 1]))
    1.0
    """
    out = np.asarray(y, dtype=float).reshape(-1)
    arm = np.zeros(out.shape[0]) if treated is None else _outcome_and_arm(out, treated)[1]
    cells = _codes(
        np.char.add(_codes(clusters, out.shape[0]).astype(str), arm.astype(str)), out.shape[0]
    )
    n_groups, n = int(cells.max()) + 1, out.shape[0]
    arms = np.unique(arm)
    size = np.bincount(cells, minlength=n_groups).astype(float)
    means = np.bincount(cells, weights=out, minlength=n_groups) / size
    cell_arm = np.zeros(n_groups)
    cell_arm[cells] = arm
    ss_between, n0_sum = 0.0, 0.0
    for a in arms:
        in_arm = cell_arm == a
        n_arm = size[in_arm].sum()
        arm_mean = float((size[in_arm] * means[in_arm]).sum() / n_arm)
        ss_between += float((size[in_arm] * (means[in_arm] - arm_mean) ** 2).sum())
        n0_sum += float((size[in_arm] ** 2).sum() / n_arm)
    df_between, df_within = n_groups - arms.shape[0], n - n_groups
    if df_between < 1 or df_within < 1:
        msg = f"Too few clusters ({n_groups}) or citizens ({n}) for an ICC"
        raise InvalidInputError(msg)
    ss_within = float(((out - means[cells]) ** 2).sum())
    msb, msw = ss_between / df_between, ss_within / df_within
    n0 = (n - n0_sum) / df_between
    denom = msb + (n0 - 1.0) * msw
    return float((msb - msw) / denom) if denom > 0 else math.nan


def observed_design_effect(clusters: np.ndarray, icc: float) -> float:
    """``1 + ((1 + CV^2) m - 1) ICC`` at the observed cluster sizes (``m`` mean, ``CV`` = sample
    SD / mean of the sizes; Eldridge et al. 2006); a negative ICC counts as 0.

    Examples
    --------
    >>> observed_design_effect(np.repeat([0, 1, 2, 3], 11), 0.1)  # 1 + (11 - 1) 0.1
    2.0
    """
    codes = _codes(clusters, np.asarray(clusters).shape[0])
    sizes = np.bincount(codes).astype(float)
    cv = float(sizes.std(ddof=1) / sizes.mean()) if sizes.shape[0] > 1 else 0.0
    safe = 0.0 if not math.isfinite(icc) else min(max(icc, 0.0), 1.0)
    return design_effect(safe, float(sizes.mean()), cv)


@dataclass(frozen=True)
class ClusterAnalysis:
    """What ``nbi experiment --cluster-col`` reports: the CR2 fit, ICC, design effect and MDE."""

    fit: ClusterFit
    icc: float
    design_effect: float
    mean_cluster_size: float
    mde: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def cluster_analysis(
    y: np.ndarray,
    treated: np.ndarray,
    clusters: np.ndarray,
    covariates: np.ndarray | None = None,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    se_type: SeType = "CR2",
) -> ClusterAnalysis:
    """The cluster-robust ITT with the ICC (arms removed), the observed design effect and the
    ICC-aware MDE (:func:`offline_eval.power.mde` at the control arm's variance: ``p(1-p)`` for
    a 0/1 outcome, the sample variance otherwise).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> g = np.repeat(np.arange(30), 20); arm = (g % 3 == 0).astype(float)
    >>> y = (rng.random(600) < 0.5 + 0.1 * rng.normal(size=30)[g]).astype(float)
    >>> a = cluster_analysis(y, arm, g)
    >>> a.fit.n_clusters, bool(a.design_effect >= 1.0), bool(a.mde > 0)
    (30, True, True)
    """
    from offline_eval.power import mde as power_mde

    fit = cluster_fit(y, treated, clusters, covariates, alpha=alpha, se_type=se_type)
    out, arm = _outcome_and_arm(y, treated)
    icc = icc_anova(out, clusters, arm)
    deff = observed_design_effect(clusters, icc)
    control = out[arm == 0]
    binary = bool(np.isin(out, (0.0, 1.0)).all())
    p = float(control.mean())
    variance = p * (1.0 - p) if binary else float(control.var(ddof=1))
    n_t, n_c = fit.effect.n_treatment, fit.effect.n_control
    mde = (
        power_mde(variance, n_t, n_c, alpha=alpha, power=power, deff=deff)
        if variance > 0
        else math.nan
    )
    sizes = np.bincount(_codes(clusters, out.shape[0]))
    return ClusterAnalysis(fit, icc, deff, float(sizes.mean()), mde)
