"""`nbi experiment --cluster-col`: the trial analysed at the level it was randomised."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.cluster import cluster_analysis, cluster_fit
from offline_eval.errors import ExperimentDataError
from offline_eval.experiment import ExperimentSpec, analyse
from service.cli import build_app


def _clustered_trial(seed: int = 1, n_clusters: int = 40, size: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), size)
    arm = np.where(np.arange(n_clusters) % 5 == 0, "control", "treatment")[g]
    shock = rng.normal(0, 0.08, n_clusters)[g]
    p = 0.55 + shock + 0.05 * (arm == "treatment")
    return pd.DataFrame(
        {
            "group": arm,
            "employed": (rng.random(g.shape[0]) < p).astype(int),
            "caseworker": [f"cw-{i:03d}" for i in g],
            "age": rng.integers(20, 60, g.shape[0]),
        }
    )


def test_cluster_column_switches_itt_lin_and_mde_to_the_cluster_analysis():
    frame = _clustered_trial()
    y = frame["employed"].to_numpy(float)
    t = (frame["group"] == "treatment").to_numpy(float)
    g = frame["caseworker"].to_numpy()
    plain = analyse(frame, ExperimentSpec(covariates=("age",)))
    res = analyse(frame, ExperimentSpec(covariates=("age",), cluster_col="caseworker"))
    ref = cluster_analysis(y, t, g)
    assert res.itt.estimate == pytest.approx(plain.itt.estimate, abs=1e-12)  # same point
    assert res.itt.se == pytest.approx(ref.fit.effect.se, rel=1e-12)
    assert res.mde == pytest.approx(ref.mde, rel=1e-12)
    lin = cluster_fit(y, t, g, frame[["age"]].to_numpy(float)).effect
    assert res.lin is not None and res.lin.se == pytest.approx(lin.se, rel=1e-12)
    # clustering with a real cluster shock widens the interval and raises the MDE
    assert res.itt.se > plain.itt.se
    assert res.mde > plain.mde
    doc = res.to_dict()
    assert doc["cluster"]["column"] == "caseworker"
    assert doc["cluster"]["fit"]["n_clusters"] == 40


def test_cli_cluster_col_json_and_bad_column(tmp_path):
    path = tmp_path / "trial.csv"
    _clustered_trial().to_csv(path, index=False)
    runner = CliRunner()
    ok = runner.invoke(
        build_app(), ["experiment", str(path), "--cluster-col", "caseworker", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["cluster"]["fit"]["se_type"] == "CR2"
    assert doc["cluster"]["design_effect"] >= 1.0
    table = runner.invoke(build_app(), ["experiment", str(path), "--cluster-col", "caseworker"])
    assert "ITT (CR2, 40 clusters)" in table.stdout
    bad = runner.invoke(build_app(), ["experiment", str(path), "--cluster-col", "nope"])
    assert bad.exit_code == 2
    assert "No cluster column 'nope'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def _job_centres(n_control: int = 3, n_centres: int = 12, size: int = 60) -> pd.DataFrame:
    """12 job centres of 60 citizens, the first ``n_control`` randomised to control."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(n_centres), size)
    return pd.DataFrame(
        {
            "jc": [f"JC{i}" for i in g],
            "group": np.where(g < n_control, "control", "treatment"),
            "employed": (rng.random(g.shape[0]) < 0.6).astype(int),
        }
    )


def _binomial_two_sided(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial p-value by hand: the outcomes no likelier than ``k``
    (statsmodels' ``binom_test``, R's ``binom.test``)."""
    pmf = [math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)]
    return sum(q for q in pmf if q <= pmf[k] * (1 + 1e-7))


def test_sample_ratio_check_counts_clusters_under_cluster_randomisation(tmp_path):
    """QA D9: 3 of 12 job centres in control at 20 % is a plausible draw, but the citizen-level
    chi-square (180 of 720 citizens) said p=0.0008 MISMATCH."""
    frame = _job_centres()
    citizens = analyse(frame).srm
    assert citizens.unit == "citizens" and citizens.mismatch  # the old, wrong alarm
    assert citizens.p_value == pytest.approx(0.000796, rel=1e-3)
    srm = analyse(frame, ExperimentSpec(cluster_col="jc")).srm
    assert (srm.unit, srm.test, srm.n_control, srm.n_total) == ("clusters", "exact binomial", 3, 12)
    assert srm.observed_share == 0.25
    assert srm.p_value == pytest.approx(_binomial_two_sided(3, 12, 0.2), rel=1e-12)
    assert srm.p_value == pytest.approx(0.7165, abs=1e-4) and not srm.mismatch
    path = tmp_path / "jc.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()
    table = runner.invoke(build_app(), ["experiment", str(path), "--cluster-col", "jc"])
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if x.startswith("control share"))
    assert line.startswith("control share (clusters)") and "MISMATCH" not in line
    assert "(3 of 12 clusters, exact binomial)" in line
    doc = json.loads(
        runner.invoke(
            build_app(), ["experiment", str(path), "--cluster-col", "jc", "--json"]
        ).stdout
    )
    assert doc["sample_ratio"]["unit"] == "clusters" and doc["sample_ratio"]["n_total"] == 12
    # a real imbalance of clusters is still flagged: 10 of 12 in control at 20 %
    lopsided = analyse(_job_centres(n_control=10), ExperimentSpec(cluster_col="jc")).srm
    assert lopsided.p_value == pytest.approx(_binomial_two_sided(10, 12, 0.2), rel=1e-12)
    assert lopsided.mismatch


def test_clusters_holding_both_arms_are_refused(tmp_path):
    """QA D10: a "cluster" column spanning both arms gave a CR2 ITT with 2 clusters."""
    frame = _job_centres()
    mixed = frame["jc"].isin(["JC0", "JC5"]) & (frame.index % 2 == 0)
    frame.loc[mixed, "group"] = np.where(
        frame.loc[mixed, "group"] == "control", "treatment", "control"
    )
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    res = CliRunner().invoke(build_app(), ["experiment", str(path), "--cluster-col", "jc"])
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith(
        "error: 2 of 12 clusters in column 'jc' hold citizens of both arms (['JC0', 'JC5'])"
    ), res.stderr
    with pytest.raises(ExperimentDataError, match="hold citizens of both arms"):
        analyse(frame, ExperimentSpec(cluster_col="jc"))
    # without --cluster-col the same file is an ordinary per-citizen trial
    assert analyse(frame).cluster is None
