"""`nbi experiment --cluster-col`: the trial analysed at the level it was randomised."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.cluster import cluster_analysis, cluster_fit
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
