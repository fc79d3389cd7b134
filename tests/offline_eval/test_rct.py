"""RCT analysis: Neyman ITT, Lin adjustment, Wald IV, SRM, MDE, Kaplan-Meier and log-rank."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from offline_eval.errors import ExperimentDataError
from offline_eval.experiment import ExperimentSpec, analyse
from offline_eval.rct import itt, lin_adjusted, mde, sample_ratio_check, wald_iv
from offline_eval.survival import kaplan_meier, log_rank


def test_lin_without_covariates_equals_neyman():
    # Regressing y on [1, T] with HC2 gives exactly the Neyman variance (Imbens & Rubin 7.7).
    rng = np.random.default_rng(0)
    t = rng.random(300) < 0.3
    y = (rng.random(300) < np.where(t, 0.6, 0.5)).astype(float)
    a = itt(y, t)
    b = lin_adjusted(y, t, np.zeros((300, 0)), hc="HC2")
    assert b.estimate == pytest.approx(a.estimate, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9)
    assert lin_adjusted(y, t, np.zeros((300, 0)), hc="HC3").se > b.se


def test_itt_and_lin_coverage_on_known_effect():
    """200 seeded trials, true effect 0.05; 95 % intervals.

    Binomial SE of the coverage share is sqrt(.95 * .05 / 200) = 0.015, so [0.90, 0.99] is
    about -3.3/+2.7 SE. Lin's SE must be smaller (the covariate explains ~ half the variance).
    """
    rng = np.random.default_rng(1)
    hits_itt = hits_lin = 0
    ratio = []
    for _ in range(200):
        n = 800
        x = rng.normal(size=n)
        t = rng.random(n) < 0.8
        y = 0.05 * t + 0.3 * x + rng.normal(scale=0.3, size=n)
        a, b = itt(y, t), lin_adjusted(y, t, x[:, None])
        hits_itt += a.ci_low <= 0.05 <= a.ci_high
        hits_lin += b.ci_low <= 0.05 <= b.ci_high
        ratio.append(b.se / a.se)
    assert 0.90 <= hits_itt / 200 <= 0.99
    assert 0.90 <= hits_lin / 200 <= 0.99
    assert np.mean(ratio) < 0.8  # sqrt(1 - R^2) with R^2 ~ 0.5 -> ~0.71


def test_wald_iv_recovers_complier_effect():
    # One-sided noncompliance: 60 % compliers; effect on compliers 0.10 => ITT 0.06.
    rng = np.random.default_rng(2)
    n = 40_000
    z = rng.random(n) < 0.8
    complier = rng.random(n) < 0.6
    d = z & complier
    y = (rng.random(n) < 0.5 + 0.10 * d).astype(float)
    c = wald_iv(y, z, d)
    assert c.rate_treatment == pytest.approx(0.6, abs=0.01)
    assert c.rate_control == 0.0
    assert c.late.ci_low <= 0.10 <= c.late.ci_high
    # SE of the Wald ratio ~ SE(ITT) / 0.6
    assert c.late.se == pytest.approx(itt(y, z).se / 0.6, rel=0.05)


@pytest.mark.parametrize(
    ("p", "n_total", "share", "expected_pp"),
    [
        (0.6, 18_000, 0.2, 2.6),
        (0.6, 18_000, 0.1, 3.4),
        (0.35, 5_000, 0.2, 4.7),
        (0.6, 72_000, 0.5, 1.02),
    ],
)
def test_mde_matches_domain_table(p, n_total, share, expected_pp):
    n_c = round(n_total * share)
    got = 100 * mde(p, n_total - n_c, n_c)
    assert got == pytest.approx(expected_pp, abs=0.06)


def test_sample_ratio_check_chi_square():
    s = sample_ratio_check(2150, 10_000, 0.2)
    # chi2 = 150^2/2000 + 150^2/8000 = 11.25 + 2.8125
    assert s.chi2 == pytest.approx(14.0625)
    assert s.p_value == pytest.approx(1.766e-4, rel=1e-2)
    assert s.mismatch


def test_kaplan_meier_with_censoring_and_greenwood():
    km = kaplan_meier(np.array([2.0, 3.0, 3.0, 5.0, 8.0]), np.array([1, 1, 0, 1, 0]))
    # S(2) = 4/5; S(3) = 4/5 * 3/4 = 0.6; S(5) = 0.6 * 1/2 = 0.3
    assert km.survival.tolist() == pytest.approx([0.8, 0.6, 0.3])
    # Greenwood at t=2: S^2 * 1/(5*4) -> se = 0.8 * sqrt(0.05)
    assert km.se[0] == pytest.approx(0.8 * math.sqrt(0.05))
    assert km.at(4.0) == pytest.approx(0.6) and km.at(1.0) == 1.0


def test_log_rank_null_and_alternative():
    rng = np.random.default_rng(3)
    same = log_rank(np.tile(np.arange(1.0, 11.0), 2), np.ones(20), np.repeat([0, 1], 10))
    assert same.chi2 == pytest.approx(0.0)
    fast = rng.exponential(5.0, 400)
    slow = rng.exponential(10.0, 400)
    t = np.concatenate([fast, slow])
    res = log_rank(t, np.ones(800), np.repeat([1, 0], 400))
    assert res.p_value < 1e-6 and res.observed_minus_expected > 0


def _rct_frame(seed: int = 4, n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.2, "control", "treatment")
    weeks = rng.exponential(np.where(group == "treatment", 18.0, 22.0))
    employed = (weeks <= 26).astype(int)
    complied = np.where(group == "treatment", (rng.random(n) < 0.6).astype(float), np.nan)
    return pd.DataFrame(
        {
            "group": group,
            "employed": employed,
            "weeks_to_job": np.where(weeks <= 40, weeks, np.nan),
            "complied": complied,
            "age": rng.integers(18, 65, n),
        }
    )


def test_analyse_full_file():
    r = analyse(_rct_frame(), ExperimentSpec(covariates=("age",)))
    assert r.n_treatment + r.n_control == 5000
    assert not r.srm.mismatch
    assert r.itt.estimate > 0 and r.lin is not None and r.compliance is not None
    assert set(r.km) == {"treatment", "control"} and r.logrank is not None
    assert r.km["treatment"].at(26.0) < r.km["control"].at(26.0)
    doc = r.to_dict()
    assert doc["itt"]["estimate"] == pytest.approx(r.itt.estimate)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"arm": ["control"], "employed": [1]}), r"Missing column\(s\) group"),
        (
            pd.DataFrame({"group": ["t", "control"], "employed": [1, 0]}),
            r"Unknown group label\(s\) \['t'\]",
        ),
        (
            pd.DataFrame(
                {"group": ["treatment"] * 3 + ["control"] * 3, "employed": [1, None, 0, 1, 0, 0]}
            ),
            "no missing",
        ),
        (pd.DataFrame({"group": ["treatment", "control"], "employed": [1, 0]}), "at least 2"),
    ],
)
def test_analyse_bad_input(frame, match):
    with pytest.raises(ExperimentDataError, match=match):
        analyse(frame)


def test_kaplan_meier_median_at_an_exact_half_despite_rounding():
    """QA D15: the control arm of a simulated trial (jobs per week below, 46 without a job by
    week 26) has 67 of 134 left after week 7, so S(7) = 1/2, but the product of the factors
    gave 0.5000000000000001 and a median of 8 (the rule is the first time with S(t) <= 0.5).
    lifelines 0.30.3 on these data: ``KaplanMeierFitter().fit(...).median_survival_time_`` =
    7.0 (and 12.0 for the 24-citizen curve)."""
    jobs = {0: 20, 1: 10, 2: 14, 3: 7, 4: 5, 5: 2, 6: 6, 7: 3, 8: 4, 10: 3, 11: 4, 12: 1,
            15: 2, 16: 2, 19: 2, 20: 1, 21: 2}  # fmt: skip
    durations = np.concatenate(
        [np.repeat(float(w), k) for w, k in jobs.items()] + [np.full(46, 26.0)]
    )
    events = np.concatenate([np.ones(134 - 46), np.zeros(46)])
    km = kaplan_meier(durations, events)
    week7 = int(np.flatnonzero(km.times == 7.0)[0])
    assert km.at_risk[week7] - km.events[week7] == 67  # exactly half of 134 left
    assert km.survival[week7] == pytest.approx(0.5, abs=1e-15) and km.survival[week7] > 0.5
    assert km.median() == 7.0
    week = kaplan_meier(np.arange(1.0, 25.0), np.ones(24))  # 12 of 24 left after week 12
    assert week.survival[11] > 0.5 and week.median() == 12.0
    assert kaplan_meier(np.array([1.0, 2.0, 9.0]), np.array([1, 0, 0])).median() is None


def test_sample_ratio_check_on_clusters_is_the_exact_binomial_test():
    """Cluster randomisation tosses one coin per cluster: the number of control clusters is
    Binomial(G, share); hand computation of the two-sided exact test (statsmodels' binom_test)."""
    pmf = [math.comb(12, j) * 0.2**j * 0.8 ** (12 - j) for j in range(13)]
    s = sample_ratio_check(3, 12, 0.2, unit="clusters")
    assert s.p_value == pytest.approx(sum(q for q in pmf if q <= pmf[3] * (1 + 1e-7)), rel=1e-12)
    assert s.chi2 == pytest.approx(0.6**2 / 2.4 + 0.6**2 / 9.6)  # Pearson, for the record
    assert (s.unit, s.test, s.mismatch) == ("clusters", "exact binomial", False)
    assert sample_ratio_check(3, 12, 0.2).test == "chi-square"
    with pytest.raises(ValueError, match="control count"):
        sample_ratio_check(13, 12, 0.2, unit="clusters")
