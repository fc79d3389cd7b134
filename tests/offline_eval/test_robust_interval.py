"""The default ``robust`` OPE interval: a variance floor from the known logger and Student's t
with the effective degrees of freedom, for targets whose weight sits on rare logged actions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from offline_eval.ci import CIConfig, RoundRewards, effective_df, interval
from offline_eval.estimators import IPS, SNIPS, DoublyRobust
from offline_eval.estimators.base import logger_variance
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import PrecomputedRewards
from tests.helpers.ope_logs import RARE_TARGET_ACTIONS, rare_target_log

K = RARE_TARGET_ACTIONS


def test_effective_df_counts_the_rounds_that_carry_the_variance():
    even = np.tile([1.0, -1.0], 50)
    assert effective_df(even) == pytest.approx(99.0)
    # two heavy rounds among 100 small ones carry nearly all the variance: df close to 1
    heavy = np.concatenate([np.full(100, 0.01), [50.0, -50.0]])
    assert effective_df(heavy) < 1.1


def test_robust_equals_textbook_t_when_no_floor_applies():
    x = np.array([1.0, 3.0, 2.0, 6.0])
    e = interval(RoundRewards(x))  # robust is the default
    c = x - x.mean()
    df = (c**2).sum() ** 2 / (c**4).sum() - 1
    half = stats.t.ppf(0.975, df) * x.std(ddof=1) / 2.0
    assert e.method == "robust"
    assert (e.ci_low, e.ci_high) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-12)
    assert e.extra["df"] == pytest.approx(df)


def test_logger_variance_is_the_hand_formula():
    rng = np.random.default_rng(3)
    logs, pi, _ = rare_target_log(500, rng)
    r = logs.reward
    got = logger_variance(logs, pi, r**2)
    count = np.bincount(logs.action, minlength=K)
    per_action = (np.bincount(logs.action, weights=r**2, minlength=K) + r.mean()) / (count + 1)
    expected = np.mean([(pi[i] ** 2 / logs.pmf[i] * per_action).sum() for i in range(500)])
    assert got == pytest.approx(expected, rel=1e-12)
    # no logger pmf in the log -> no floor
    bare = LoggedBandit(logs.context, logs.action, r, logs.propensity, K)
    assert logger_variance(bare, pi, r**2) is None


def test_floor_widens_a_sample_that_drew_few_heavy_rounds():
    """A log where the rare target action was drawn only twice, both times a success."""
    rng = np.random.default_rng(5)
    logs, pi, _ = rare_target_log(2000, rng)
    hit = np.flatnonzero(logs.action == 0)
    keep = np.concatenate([hit[:2], np.flatnonzero(logs.action != 0)])
    reward = logs.reward.copy()
    reward[hit[:2]] = 1.0
    thin = LoggedBandit(
        logs.context[keep],
        logs.action[keep],
        reward[keep],
        logs.propensity[keep],
        K,
        pmf=logs.pmf[keep],
    )
    est = SNIPS().estimate(thin, pi[keep])
    plain = SNIPS().estimate(thin, pi[keep], CIConfig(method="analytic"))
    assert "variance_floor" in est.extra
    assert est.ci_high - est.ci_low > 3 * (plain.ci_high - plain.ci_low)


@pytest.mark.slow
def test_robust_interval_holds_its_level_for_a_low_ess_deterministic_target():
    """400 seeded logs of 2,000 rounds, ESS ~ 40.

    Binomial SE of a coverage share over 400 reps is sqrt(.95 * .05 / 400) = 0.011, so
    [0.93, 0.995] is about -1.8 to +4 SE around 0.95. The textbook interval for SNIPS falls to
    about 0.93 here (the same regime as ``always:private_wage_subsidy`` on the simulator).
    """
    rng = np.random.default_rng(0)
    estimators = (IPS(), SNIPS(), DoublyRobust(PrecomputedRewards(np.full((2000, K), 0.5))))
    hits = np.zeros(len(estimators))
    widths = np.zeros((2, len(estimators)))
    reps = 400
    for _ in range(reps):
        logs, pi, truth = rare_target_log(2000, rng)
        for j, est in enumerate(estimators):
            e = est.estimate(logs, pi)
            hits[j] += e.contains(truth)
            widths[0, j] += e.ci_high - e.ci_low
            a = est.estimate(logs, pi, CIConfig(method="analytic"))
            widths[1, j] += a.ci_high - a.ci_low
    coverage = hits / reps
    for est, cov in zip(estimators, coverage, strict=True):
        assert 0.93 <= cov <= 0.995, f"{est.name}: coverage {cov:.3f}"
    # the guards only widen: never narrower than the textbook interval on average
    assert np.all(widths[0] >= widths[1] * (1 - 1e-9))
    assert math.isfinite(float(widths.sum()))
