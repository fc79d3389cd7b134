"""Estimators against textbook formulas on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from offline_eval.ci import CIConfig, RoundRewards, interval
from offline_eval.estimators import (
    IPS,
    SNIPS,
    DirectMethod,
    DoublyRobust,
    Replay,
    SelfNormalizedDR,
    SwitchDR,
)
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import PrecomputedRewards

# 3 rounds, 2 actions. Weights w = pi(a_i)/p_i: round0 0.8/0.5 = 1.6, round1 0.6/0.25 = 2.4,
# round2 0.1/0.5 = 0.2.
LOGS = LoggedBandit(
    context=np.zeros((3, 1)),
    action=np.array([0, 1, 0]),
    reward=np.array([1.0, 1.0, 0.0]),
    propensity=np.array([0.5, 0.25, 0.5]),
    n_actions=2,
)
PI = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9]])
Q = np.array([[0.5, 0.3], [0.2, 0.7], [0.4, 0.6]])
W = np.array([1.6, 2.4, 0.2])
DM_I = np.array(
    [0.8 * 0.5 + 0.2 * 0.3, 0.4 * 0.2 + 0.6 * 0.7, 0.1 * 0.4 + 0.9 * 0.6]
)  # .46 .50 .58
RES = W * (np.array([1.0, 1.0, 0.0]) - np.array([0.5, 0.7, 0.4]))  # 0.8, 0.72, -0.08


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (IPS(), (1.6 + 2.4 + 0.0) / 3),
        (IPS(max_weight=2.0), (1.6 + 2.0) / 3),
        (SNIPS(), (1.6 + 2.4) / (1.6 + 2.4 + 0.2)),
        (DirectMethod(PrecomputedRewards(Q)), (0.46 + 0.50 + 0.58) / 3),
        (DoublyRobust(PrecomputedRewards(Q)), (0.46 + 0.8 + 0.50 + 0.72 + 0.58 - 0.08) / 3),
        (SelfNormalizedDR(PrecomputedRewards(Q)), 1.54 / 3 + (0.8 + 0.72 - 0.08) / 4.2),
        # tau = 2: round 1 (w = 2.4) keeps only its DM term.
        (SwitchDR(PrecomputedRewards(Q), tau=2.0), (0.46 + 0.8 + 0.50 + 0.58 - 0.08) / 3),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_hand_computed_values(estimator, expected):
    est = estimator.estimate(LOGS, PI)
    assert est.value == pytest.approx(expected, abs=1e-12)
    assert est.n == 3
    assert est.ci_low < est.value < est.ci_high


def test_analytic_interval_is_textbook_normal_interval():
    x = np.array([1.0, 3.0, 2.0, 6.0])
    e = interval(RoundRewards(x), CIConfig(method="analytic"))
    half = 1.959963984540054 * np.std(x, ddof=1) / 2.0
    assert (e.ci_low, e.ci_high) == pytest.approx((3.0 - half, 3.0 + half))


def test_ratio_interval_uses_delta_method():
    num, den = W * LOGS.reward, W
    v = num.sum() / den.sum()
    infl = (num - v * den) / den.mean()
    half = 1.959963984540054 * infl.std(ddof=1) / np.sqrt(3)
    e = SNIPS().estimate(LOGS, PI, CIConfig(method="analytic"))
    assert (e.ci_low, e.ci_high) == pytest.approx((v - half, v + half))


def test_replay_keeps_rounds_where_deterministic_target_agrees():
    logs = LoggedBandit(
        np.zeros((6, 1)),
        np.array([0, 1, 2, 0, 1, 2]),
        np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0]),
        np.full(6, 1 / 3),
        3,
    )
    target = np.zeros((6, 3))
    target[np.arange(6), [0, 0, 2, 0, 1, 1]] = 1.0  # agrees on rounds 0, 2, 3, 4
    est = Replay(seed=1).estimate(logs, target)
    assert est.n == 4
    assert est.value == pytest.approx((1.0 + 0.0 + 0.0 + 1.0) / 4)


def test_bootstrap_exact_small_sample_agrees_with_analytic():
    # n = 400 <= max_atoms: atoms are the rows (exact multinomial bootstrap). For a mean the
    # percentile interval approaches the normal one; with 4,000 resamples the Monte Carlo error
    # of a 2.5 % quantile is ~ 0.05 SE, so 0.15 SE tolerance is ample.
    rng = np.random.default_rng(3)
    x = rng.normal(size=400)
    rr = RoundRewards(x)
    a = interval(rr)
    b = interval(rr, CIConfig(method="bootstrap", n_boot=4000, seed=1))
    se = a.extra["se"]
    assert b.value == a.value
    assert abs(b.ci_low - a.ci_low) < 0.15 * se
    assert abs(b.ci_high - a.ci_high) < 0.15 * se


def test_bootstrap_binned_large_sample_reports_small_loss_and_matches_analytic():
    rng = np.random.default_rng(4)
    n = 200_000
    w = rng.exponential(size=n)
    rr = RoundRewards(w * (rng.random(n) < 0.3), w, offset=rng.random(n))
    a = interval(rr)
    b = interval(rr, CIConfig(method="bootstrap", n_boot=2000, seed=2, max_atoms=512))
    assert b.extra["binning_loss"] < 1e-2
    se = a.extra["se"]
    # 2,000 resamples: quantile MC error ~ 0.1 SE; allow 0.25 SE.
    assert abs(b.ci_low - a.ci_low) < 0.25 * se
    assert abs(b.ci_high - a.ci_high) < 0.25 * se


def test_bootstrap_is_seeded():
    rr = RoundRewards(np.random.default_rng(0).random(5000))
    cfg = CIConfig(method="bootstrap", n_boot=500, seed=9)
    assert interval(rr, cfg) == interval(rr, cfg)
