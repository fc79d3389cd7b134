"""Intervals for the self-normalised estimators (SNIPS, SNDR): reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq, minimize

from offline_eval import ratio_interval as ri
from offline_eval.ci import RoundRewards, analytic_interval, effective_df
from offline_eval.estimators import SNIPS, SelfNormalizedDR
from offline_eval.reward_model import PrecomputedRewards
from tests.helpers.ope_logs import RARE_TARGET_ACTIONS, rare_target_log


def _ratio_rr(n: int, seed: int, *, offset: bool = False) -> RoundRewards:
    """SNIPS-like terms: weight 1 / 0.05 on 5 % of the rounds, Bernoulli(0.6) rewards."""
    rng = np.random.default_rng(seed)
    w = np.where(rng.random(n) < 0.05, 20.0, 0.0) + rng.random(n) * 0.5
    r = (rng.random(n) < 0.6).astype(float)
    if not offset:
        return RoundRewards(w * r, w)
    dm = 0.5 + 0.2 * rng.random(n)
    return RoundRewards(w * (r - dm), w, offset=dm)


@pytest.mark.parametrize("offset", [False, True])
def test_estimating_function_is_zero_at_the_estimate_and_gives_the_influence(offset: bool) -> None:
    rr = _ratio_rr(300, 1, offset=offset)
    a, d = ri._parts(rr)
    v = rr.value()
    g = a - v * d
    assert g.mean() == pytest.approx(0.0, abs=1e-12)
    infl = rr.influence()
    assert g / d.mean() == pytest.approx(infl - infl.mean(), abs=1e-12)


@pytest.mark.parametrize("offset", [False, True])
def test_fieller_closed_form_equals_the_numeric_inversion(offset: bool) -> None:
    rr = _ratio_rr(200, 2, offset=offset)
    a, d = ri._parts(rr)
    n, q, scale = a.shape[0], 2.1, 1.3
    v = rr.value()

    def excess(theta: float) -> float:  # Fieller's test statistic minus the critical value
        g = a - theta * d
        return float(g.mean() ** 2 - q * q * scale * g.var(ddof=1) / n)

    low, high = ri.fieller_interval(rr, q, scale)
    assert excess(v) < 0
    assert low == pytest.approx(brentq(excess, v - 5, v), abs=1e-10)
    assert high == pytest.approx(brentq(excess, v, v + 5), abs=1e-10)


def test_fieller_is_unbounded_when_the_denominator_is_not_significant() -> None:
    rr = RoundRewards(np.array([1.0, -1.0, 2.0, 0.0]), np.array([1.0, -1.0, 0.5, -0.4]))
    assert ri.fieller_interval(rr, 1.96) == (-math.inf, math.inf)


def _el_primal(g: np.ndarray) -> float:
    """-2 log R by maximising sum log(n p_i) over the simplex with sum p_i g_i = 0 (SLSQP)."""
    n = g.shape[0]
    res = minimize(
        lambda p: -np.log(n * p).sum(),
        np.full(n, 1.0 / n),
        jac=lambda p: -1.0 / p,
        constraints=[
            {"type": "eq", "fun": lambda p: p.sum() - 1.0, "jac": lambda p: np.ones(n)},
            {"type": "eq", "fun": lambda p: p @ g, "jac": lambda p: g},
        ],
        bounds=[(1e-12, 1.0)] * n,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert res.success
    return 2.0 * float(res.fun)


def test_empirical_likelihood_statistic_equals_the_primal_optimum() -> None:
    rng = np.random.default_rng(4)
    g = rng.exponential(size=25) - 0.8
    assert ri.el_statistic(g) == pytest.approx(_el_primal(g), rel=1e-6)
    # zeros (rounds the target never weights) carry weight 1/n and change nothing but n
    g0 = np.concatenate([g, np.zeros(10)])
    assert ri.el_statistic(g0) == pytest.approx(_el_primal(g0), rel=1e-6)
    assert ri.el_statistic(np.abs(g) + 0.1) == math.inf


@pytest.mark.parametrize("offset", [False, True])
def test_el_interval_ends_have_the_critical_statistic(offset: bool) -> None:
    rr = _ratio_rr(400, 5, offset=offset)
    a, d = ri._parts(rr)
    low, high = ri.el_interval(rr, 2.0, 1.2)
    assert low < rr.value() < high
    for end in (low, high):
        assert ri.el_statistic(a - end * d) == pytest.approx(4.0 * 1.2, rel=1e-6)


@pytest.mark.parametrize("offset", [False, True])
def test_jackknife_variance_is_the_leave_one_out_loop(offset: bool) -> None:
    rr = _ratio_rr(150, 6, offset=offset)
    n = rr.n
    loo = []
    for i in range(n):
        keep = np.arange(n) != i
        sub = RoundRewards(
            rr.numerator[keep],
            None if rr.denominator is None else rr.denominator[keep],
            None if rr.offset is None else rr.offset[keep],
        )
        loo.append(sub.value())
    expected = (n - 1) / n * float(((np.array(loo) - np.mean(loo)) ** 2).sum())
    assert ri.jackknife_variance(rr) / n == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("offset", [False, True])
def test_bootstrap_t_is_the_resample_loop(offset: bool) -> None:
    rr = _ratio_rr(120, 7, offset=offset)
    weights = np.random.default_rng(8).poisson(1.0, size=(200, rr.n)).astype(float)
    v = rr.value()
    t = []
    for u in weights:
        keep = np.repeat(np.arange(rr.n), u.astype(int))  # a weight-k round counted k times
        sub = RoundRewards(
            rr.numerator[keep],
            None if rr.denominator is None else rr.denominator[keep],
            None if rr.offset is None else rr.offset[keep],
        )
        infl = sub.influence()
        t.append((sub.value() - v) / math.sqrt(infl.var(ddof=1) / sub.n))
    expected = np.quantile(t, [0.025, 0.975])
    got = ri.bootstrap_t_quantiles(rr, 0.05, weights=weights)
    assert got == pytest.approx(tuple(expected), rel=1e-9)


K = RARE_TARGET_ACTIONS


def test_robust_fieller_interval_holds_its_level_on_a_low_ess_target() -> None:
    """400 seeded logs of 2,000 rounds, ESS ~ 40, SNIPS and SNDR (a rough reward model).

    The binomial SE of a coverage share over 400 reps at 0.95 is sqrt(.95 * .05 / 400) = 0.011;
    the accepted band is 0.95 +- 3 SE. Fieller's interval is wider than the delta method's by
    about 1 / (1 - g), g = q^2 var(mean w) / mean(w)^2 ~ q^2 / ESS ~ 0.1 here, and the mean
    width ratio is held to [1, 1.15].
    """
    rng = np.random.default_rng(11)
    reps = 400
    hits = np.zeros(2)
    width = np.zeros((2, 2))
    for _ in range(reps):
        logs, pi, truth = rare_target_log(2000, rng)
        q_hat = np.repeat(0.4 + 0.3 * logs.context, K, axis=1)
        for j, est in enumerate((SNIPS(), SelfNormalizedDR(PrecomputedRewards(q_hat)))):
            rr = est.round_rewards(logs, pi)
            e = ri.robust_fieller_interval(rr, 0.05, estimator=est.name)
            hits[j] += e.contains(truth)
            width[0, j] += e.ci_high - e.ci_low
            delta = analytic_interval(rr, 0.05, robust=True)
            width[1, j] += delta.ci_high - delta.ci_low
    se = math.sqrt(0.95 * 0.05 / reps)
    for name, cov in zip(("snips", "sndr"), hits / reps, strict=True):
        assert 0.95 - 3 * se <= cov <= 0.95 + 3 * se, f"{name}: coverage {cov:.3f}"
    ratio = width[0] / width[1]
    assert np.all((ratio >= 1.0) & (ratio <= 1.15)), ratio
    print("coverage", hits / reps, "width ratio", ratio)


def test_robust_fieller_is_fieller_with_the_floor_and_the_t_quantile() -> None:
    rr = _ratio_rr(500, 9)
    infl = rr.influence()
    var = float(infl.var(ddof=1))
    floored = RoundRewards(rr.numerator, rr.denominator, variance_floor=2.0 * var)
    q = float(stats.t.ppf(0.975, effective_df(infl)))
    e = ri.robust_fieller_interval(floored, 0.05)
    assert (e.ci_low, e.ci_high) == pytest.approx(ri.fieller_interval(rr, q, 2.0), abs=1e-12)
    assert e.extra["variance_floor"] == 2.0 * var
    # without a floor the scale is 1; the interval contains the estimate
    plain = ri.robust_fieller_interval(rr, 0.05)
    assert (plain.ci_low, plain.ci_high) == pytest.approx(ri.fieller_interval(rr, q), abs=1e-12)
    assert plain.ci_low < rr.value() < plain.ci_high
