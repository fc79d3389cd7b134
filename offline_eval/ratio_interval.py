"""Intervals for self-normalised (ratio) estimators: SNIPS and SNDR.

A self-normalised estimate is ``V = mean(offset) + sum(numerator) / sum(denominator)``. Testing a
value ``theta`` amounts to testing that the mean of the per-round estimating function

    ``g_i(theta) = n_i + d_bar (o_i - o_bar) + o_bar d_i - theta d_i``

is zero (``n``, ``d``, ``o``: numerator, denominator, offset; ``d_bar`` and ``o_bar`` held at
their means, so ``mean(g(theta)) = d_bar (V - theta)`` and ``g(V) / d_bar`` is the delta-method
influence; with no offset it is the ratio's own estimating function ``w_i (r_i - theta)``).

* :func:`fieller_interval`: Fieller's (1954) interval, the ``theta`` where
  ``mean(g(theta))^2 <= q^2 var(g(theta)) / n`` with the centred sample variance (a quadratic
  in ``theta``, closed form), i.e. the variance evaluated at each ``theta`` tested;
  :func:`robust_fieller_interval` adds the ``robust`` guards;
* :func:`el_interval`: Owen's (1988, 2001) profile empirical likelihood of ``mean(g) = 0``;
* :func:`jackknife_variance`: the jackknife variance of the estimate (for the ratio the
  intercept-only HC3 of a weighted mean: leverage ``w_i / sum w``);
* :func:`bootstrap_t_quantiles`: the studentised (bootstrap-t) pivot's quantiles (Efron &
  Tibshirani 1993, ch. 12; Hall 1988), Poisson resampling.

All take the quantile ``q`` (Student's t with the effective degrees of freedom) and a variance
inflation ``scale >= 1`` (the logger's variance floor over the empirical variance), the guards of
the ``robust`` interval of :mod:`offline_eval.ci`. ``bench/bench_ratio_interval.py`` compares
them with the delta method on the simulator; the default stays the delta method (see
docs/decisions.md, "OPE intervals for low-ESS targets").
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from scipy.optimize import brentq
from scipy.stats import t as student_t

from offline_eval.ci import Estimate, RoundRewards, effective_df


def _parts(rr: RoundRewards) -> tuple[np.ndarray, np.ndarray]:
    """``(a, d)`` with ``g(theta) = a - theta * d`` per round (see the module docstring)."""
    if rr.denominator is None:
        msg = "A ratio interval needs RoundRewards with a denominator"
        raise ValueError(msg)
    d = rr.denominator
    if rr.offset is None:
        return rr.numerator, d
    off_bar = float(rr.offset.mean())
    a: np.ndarray = rr.numerator + float(d.mean()) * (rr.offset - off_bar) + off_bar * d
    return a, d


def fieller_interval(rr: RoundRewards, q: float, scale: float = 1.0) -> tuple[float, float]:
    """Fieller's interval for ``mean(a) / mean(d)``: ``{theta : (a_bar - theta d_bar)^2 <=
    q^2 scale (s_aa - 2 theta s_ad + theta^2 s_dd) / n}``.

    Returns ``(-inf, inf)`` when the set is not a bounded interval (the denominator's mean is
    not significantly away from 0).

    References
    ----------
    Fieller, E. C. (1954). Some problems in interval estimation. JRSS B 16(2), 175-185.
    """
    a, d = _parts(rr)
    n = a.shape[0]
    cov = np.cov(np.vstack([a, d]), ddof=1)
    k = q * q * scale / n
    a_bar, d_bar = float(a.mean()), float(d.mean())
    qa = d_bar * d_bar - k * float(cov[1, 1])
    qb = -2.0 * (a_bar * d_bar - k * float(cov[0, 1]))
    qc = a_bar * a_bar - k * float(cov[0, 0])
    disc = qb * qb - 4.0 * qa * qc
    if qa <= 0 or disc < 0:
        return -math.inf, math.inf
    root = math.sqrt(disc)
    return (-qb - root) / (2.0 * qa), (-qb + root) / (2.0 * qa)


def el_statistic(g: np.ndarray) -> float:
    """``-2 log R`` of Owen's empirical likelihood ratio for ``mean(g) = 0``.

    ``R = max prod n p_i`` over weights ``p_i >= 0`` summing to 1 with ``sum p_i g_i = 0``; the
    solution is ``p_i = 1 / (n (1 + lam g_i))`` with ``lam`` the root of
    ``sum g_i / (1 + lam g_i) = 0``, and ``-2 log R = 2 sum log(1 + lam g_i)``. ``inf`` when 0
    is outside the convex hull of the ``g_i``.
    """
    lo, hi = float(g.min()), float(g.max())
    if lo >= 0 or hi <= 0:
        return 0.0 if lo == hi == 0 else math.inf
    nz = g[g != 0]

    def score(lam: float) -> float:
        return float((nz / (1.0 + lam * nz)).sum())

    eps = 1e-10
    lam = brentq(score, (-1.0 + eps) / hi, (-1.0 + eps) / lo, xtol=1e-14, rtol=1e-12)
    return 2.0 * float(np.log1p(lam * nz).sum())


def el_interval(rr: RoundRewards, q: float, scale: float = 1.0) -> tuple[float, float]:
    """Profile empirical-likelihood interval ``{theta : -2 log R(theta) <= q^2 scale}`` for
    ``mean(a - theta d) = 0`` (see :func:`el_statistic`).

    References
    ----------
    Owen, A. B. (2001). Empirical Likelihood. Chapman & Hall/CRC, ch. 2-3.
    """
    a, d = _parts(rr)
    centre = float(a.sum() / d.sum())
    crit = q * q * scale

    def excess(theta: float) -> float:
        return el_statistic(a - theta * d) - crit

    span = max(1e-3, abs(centre)) * 0.05
    ends: list[float] = []
    for sign in (-1.0, 1.0):
        step = span
        inner = centre
        while True:
            outer = centre + sign * step
            val = excess(outer)
            if val > 0:
                break
            inner = outer
            step *= 2.0
            if step > 1e6:  # noqa: PLR2004
                return -math.inf, math.inf
        if math.isinf(val):
            # the edge of the convex hull: bisect on the finite side
            lo_t, hi_t = (inner, outer) if sign > 0 else (outer, inner)
            for _ in range(200):
                mid = 0.5 * (lo_t + hi_t)
                if excess(mid) > 0:
                    lo_t, hi_t = (lo_t, mid) if sign > 0 else (mid, hi_t)
                else:
                    lo_t, hi_t = (mid, hi_t) if sign > 0 else (lo_t, mid)
                if hi_t - lo_t < 1e-12:  # noqa: PLR2004
                    break
            ends.append(0.5 * (lo_t + hi_t))
        else:
            ends.append(brentq(excess, *sorted((inner, outer)), xtol=1e-12))
    return ends[0], ends[1]


def jackknife_variance(rr: RoundRewards) -> float:
    """Per-round jackknife variance of the estimate (``n`` times the jackknife variance of
    ``V``): leave-one-out values ``V_(i)`` in closed form, ``(n - 1) sum (V_(i) - mean)^2``.

    For a ratio this equals the delta-method sum with each influence value divided by
    ``1 - h_i``, ``h_i = d_i / sum d`` (HC3 of a weighted mean).
    """
    num = rr.numerator
    den = np.ones_like(num) if rr.denominator is None else rr.denominator
    n = num.shape[0]
    loo = (num.sum() - num) / (den.sum() - den)
    if rr.offset is not None:
        loo = loo + (rr.offset.sum() - rr.offset) / (n - 1)
    c = loo - loo.mean()
    return float((n - 1) * (c * c).sum())


def bootstrap_t_quantiles(
    rr: RoundRewards,
    alpha: float,
    n_boot: int = 999,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> tuple[float, float]:
    """Quantiles ``(t_lo, t_hi)`` of the studentised ratio ``(V* - V) / se*`` under the Poisson
    bootstrap; the interval is ``(V - t_hi se, V - t_lo se)``. ``weights``: Poisson(1) weights,
    shape ``(n_boot, n)``, to share between estimators (default: drawn from ``seed``)."""
    num = rr.numerator
    den = np.ones_like(num) if rr.denominator is None else rr.denominator
    off = np.zeros_like(num) if rr.offset is None else rr.offset
    v = rr.value()
    rng = np.random.default_rng(seed)
    cols = np.column_stack(
        [
            np.ones_like(num),
            num,
            den,
            off,
            num * num,
            den * den,
            off * off,
            num * den,
            num * off,
            den * off,
        ]
    )
    chunk = max(1, 2_000_000 // num.shape[0])
    ts: list[np.ndarray] = []
    n_boot = n_boot if weights is None else weights.shape[0]
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        u = (
            rng.poisson(1.0, size=(m, num.shape[0])).astype(float)
            if weights is None
            else weights[start : start + m]
        )
        s = u @ cols
        cnt, sn, sd, so, snn, sdd, soo, snd, sno, sdo = s.T
        with np.errstate(divide="ignore", invalid="ignore"):  # resamples without weight: nan
            r = sn / sd
            dbar = sd / cnt
            # influence c_i = o_i + (n_i - r d_i) / dbar: weighted second moment minus mean^2
            m2 = soo + (snn - 2 * r * snd + r * r * sdd) / dbar**2 + 2 * (sno - r * sdo) / dbar
            m1 = so / cnt  # the ratio part has weighted mean 0
            var = (m2 / cnt - m1 * m1) * cnt / (cnt - 1)
            ts.append((so / cnt + r - v) / np.sqrt(var / cnt))
    t = np.concatenate(ts)
    t = t[np.isfinite(t)]
    lo, hi = np.quantile(t, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def robust_fieller_interval(
    rr: RoundRewards, alpha: float = 0.05, *, estimator: str = ""
) -> Estimate:
    """Fieller's interval of a self-normalised estimate (SNIPS, SNDR) with the ``robust`` guards.

    Not the default (docs/decisions.md, "OPE intervals for low-ESS targets": on 300 simulator
    seeds it covers as the delta method does, a little wider). The two small-sample guards of :func:`offline_eval.ci.analytic_interval` (the logger's
    variance floor, Student's t with the effective degrees of freedom) applied to Fieller's
    interval instead of the delta method's: the floor enters as the variance inflation
    ``max(1, floor / var(influence))``.

    Parameters
    ----------
    rr
        Per-round terms with a denominator.
    alpha
        1 - confidence level.
    estimator
        Name recorded in the result.
    """
    v = rr.value()
    n = rr.n
    if n < 2 or not math.isfinite(v):  # noqa: PLR2004
        return Estimate(v, math.nan, math.nan, n, estimator, "robust-fieller")
    infl = rr.influence()
    var = float(infl.var(ddof=1))
    floor = rr.variance_floor
    extra: dict[str, float] = {}
    robust_var = var
    if floor is not None and math.isfinite(floor) and floor > var:
        extra["variance_floor"] = floor
        robust_var = floor
    df = effective_df(infl)
    q = (
        float(student_t.ppf(1.0 - alpha / 2.0, max(df, 1.0)))
        if math.isfinite(df)
        else NormalDist().inv_cdf(1.0 - alpha / 2.0)
    )
    extra["df"] = df
    se = math.sqrt(robust_var / n)
    extra["se"] = se
    if var <= 0:  # no spread to shape Fieller's interval: the floor alone, as the delta method
        return Estimate(v, v - q * se, v + q * se, n, estimator, "robust-fieller", extra)
    scale = robust_var / var
    low, high = fieller_interval(rr, q, scale)
    return Estimate(v, low, high, n, estimator, "robust-fieller", extra)
