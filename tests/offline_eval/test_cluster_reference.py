"""Cluster-robust ITT (CR2, CR1), ICC and design effect against checked-in reference numbers.

``reference/cluster_reference.json`` holds four fixed-seed data sets and the reference values
written by ``reference/make_cluster_reference.py``: CR1 from statsmodels' ``cov_type="cluster"``,
CR2 and its Bell-McCaffrey degrees of freedom from a dense textbook implementation and, for the
difference in means, the closed form; the ICC from statsmodels' ANOVA. This test needs no
statsmodels. Agreement to 1e-6 (relative) or better.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t as t_dist

from bandit.errors import InvalidInputError
from offline_eval.cluster import (
    cluster_fit,
    cluster_itt,
    icc_anova,
    observed_design_effect,
)

REF = json.loads((Path(__file__).parent / "reference" / "cluster_reference.json").read_text())
CASES = [
    (name, model)
    for name, data in REF["datasets"].items()
    for model in ("dim", "lin")
    if model in data["models"]
]


def _data(name):
    d = REF["datasets"][name]
    x = None if d["x"] is None else np.array(d["x"])
    return np.array(d["y"]), np.array(d["t"]), np.array(d["g"]), x


@pytest.mark.parametrize(("name", "model"), CASES)
def test_cr2_matches_reference(name, model):
    y, t, g, x = _data(name)
    ref = REF["datasets"][name]["models"][model]
    fit = cluster_fit(y, t, g, x if model == "lin" else None)
    assert fit.estimate == pytest.approx(ref["estimate"], rel=1e-9, abs=1e-12)
    assert fit.se == pytest.approx(ref["cr2_se"], rel=1e-6)
    assert fit.df == pytest.approx(ref["cr2_df"], rel=1e-6)
    if "cr2_closed_form_se" in ref:
        assert fit.se == pytest.approx(ref["cr2_closed_form_se"], rel=1e-6)
    crit = t_dist.ppf(0.975, ref["cr2_df"])
    assert fit.effect.ci_high - fit.effect.estimate == pytest.approx(crit * ref["cr2_se"], rel=1e-6)


@pytest.mark.parametrize(("name", "model"), CASES)
def test_cr1_matches_statsmodels(name, model):
    y, t, g, x = _data(name)
    ref = REF["datasets"][name]["models"][model]
    fit = cluster_fit(y, t, g, x if model == "lin" else None, se_type="CR1")
    assert fit.se == pytest.approx(ref["cr1_se"], rel=1e-6)
    assert fit.df == len(set(g)) - 1


@pytest.mark.parametrize("name", list(REF["datasets"]))
def test_icc_matches_anova_reference(name):
    y, t, g, _ = _data(name)
    assert icc_anova(y, g, t) == pytest.approx(REF["datasets"][name]["icc"], rel=1e-6)


def test_cr2_exceeds_cr1_with_few_clusters():
    y, t, g, _ = _data("few_clusters")
    cr1 = cluster_fit(y, t, g, se_type="CR1")
    cr2 = cluster_fit(y, t, g)
    assert cr2.se > cr1.se and cr2.df < cr1.df + 1e-9
    assert (cr2.n_clusters, cr2.n_clusters_treatment, cr2.n_clusters_control) == (8, 4, 4)


def test_cluster_itt_returns_effect_with_string_cluster_ids():
    y, t, g, _ = _data("binary_unequal")
    named = np.array([f"c_{v:03d}" for v in g], dtype=object)
    e = cluster_itt(y, t, named)
    assert e.se == pytest.approx(REF["datasets"]["binary_unequal"]["models"]["dim"]["cr2_se"])
    assert e.n_treatment + e.n_control == len(y) and 0 < e.p_value < 1


def test_observed_design_effect_uses_cv_adjusted_formula():
    _, _, g, _ = _data("binary_unequal")
    sizes = np.bincount(g).astype(float)
    m, cv = sizes.mean(), sizes.std(ddof=1) / sizes.mean()
    assert observed_design_effect(g, 0.05) == pytest.approx(1 + ((1 + cv**2) * m - 1) * 0.05)
    assert observed_design_effect(g, -0.01) == 1.0


def test_one_cluster_per_arm_and_bad_input_give_clear_errors():
    y = np.arange(8.0)
    t = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    with pytest.raises(InvalidInputError, match="at least two clusters in each arm"):
        cluster_itt(y, t, np.array([0, 0, 0, 0, 1, 1, 2, 2]))
    with pytest.raises(InvalidInputError, match="one cluster id per row"):
        cluster_itt(y, t, np.arange(5))
    with pytest.raises(InvalidInputError, match="0 \\(control\\) or 1"):
        cluster_itt(y, t * 2, np.arange(8) // 2)
    with pytest.raises(InvalidInputError, match="missing"):
        cluster_itt(y, t, np.array([0, 0, 1, 1, 2, 2, 3, math.nan]))


def test_cluster_analysis_mde_is_the_one_convention_with_the_observed_design_effect():
    from scipy.stats import norm

    from offline_eval.cluster import cluster_analysis

    y, t, g, _ = _data("binary_unequal")
    a = cluster_analysis(y, t, g)
    ref = REF["datasets"]["binary_unequal"]
    sizes = np.bincount(g).astype(float)
    m, cv = sizes.mean(), sizes.std(ddof=1) / sizes.mean()
    deff = 1 + ((1 + cv**2) * m - 1) * max(ref["icc"], 0.0)
    p = y[t == 0].mean()
    n_t, n_c = int(t.sum()), int((1 - t).sum())
    hand = (norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(p * (1 - p) * (1 / n_t + 1 / n_c) * deff)
    assert a.icc == pytest.approx(ref["icc"], rel=1e-6)
    assert a.design_effect == pytest.approx(deff, rel=1e-9)
    assert a.mde == pytest.approx(hand, rel=1e-9)
    assert a.fit.se == pytest.approx(ref["models"]["dim"]["cr2_se"], rel=1e-6)
    assert json.dumps(a.to_dict())
