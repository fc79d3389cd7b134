"""The ``nbi evaluate / experiment / fairness / report`` commands on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from offline_eval.logs import write_logs
from service.cli import build_app
from tests.offline_eval.synthetic import make_env

from .test_fairness import _frame as fairness_frame
from .test_rct import _rct_frame

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    env = make_env(seed=2)
    logs, target = env.sample(3000, seed=3)
    write_logs(logs, d / "logs.parquet")
    np.save(d / "target.npy", target)
    rct = _rct_frame(n=2000).join(fairness_frame(n=2000)[["gender", "origin"]])
    rct.to_csv(d / "rct.csv", index=False)
    return d, env.true_value()


def _run(*args):
    return RUNNER.invoke(build_app(), [str(a) for a in args])


def test_evaluate_json_is_one_document(files):
    d, truth = files
    res = _run("evaluate", d / "logs.parquet", "--target-probs", d / "target.npy", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    est = {e["estimator"]: e for e in doc["evaluations"][0]["estimates"]}
    assert set(est) >= {"ips", "snips", "dm", "dr", "sndr", "switch_dr"}
    assert abs(est["dr"]["value"] - truth) / truth < 0.1
    assert doc["evaluations"][0]["diagnostics"]["ess"] > 0


def test_evaluate_named_policies_table(files):
    d, _ = files
    res = _run(
        "evaluate",
        d / "logs.parquet",
        "--policy",
        "uniform",
        "--policy",
        "practice",
        "--estimators",
        "ips,dr",
    )
    assert res.exit_code == 0, res.output
    assert "uniform" in res.stdout and "practice" in res.stdout and "dr" in res.stdout


def test_evaluate_bootstrap(files):
    d, _ = files
    res = _run(
        "evaluate",
        d / "logs.parquet",
        "--target-probs",
        d / "target.npy",
        "--ci",
        "bootstrap",
        "--n-boot",
        "200",
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["evaluations"][0]["estimates"][0]["method"] == "bootstrap"


def test_evaluate_exact_bootstrap(files):
    d, _ = files
    res = _run(
        "evaluate",
        d / "logs.parquet",
        "--target-probs",
        d / "target.npy",
        "--ci",
        "bootstrap",
        "--bootstrap",
        "exact",
        "--n-boot",
        "200",
        "--json",
    )
    assert res.exit_code == 0, res.output
    estimates = json.loads(res.stdout)["evaluations"][0]["estimates"]
    assert {e["method"] for e in estimates} == {"bootstrap-exact"}
    assert all(e["ci_low"] <= e["value"] <= e["ci_high"] for e in estimates)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["evaluate", "missing.parquet", "--policy", "uniform"],
            "error: No such file: missing.parquet",
        ),
        (["evaluate", "{d}/logs.parquet"], "error: give --policy NAME"),
        (
            ["evaluate", "{d}/logs.parquet", "--policy", "nope"],
            "error: Unknown target policy 'nope'",
        ),
        (
            ["evaluate", "{d}/logs.parquet", "--target-probs", "{d}/logs.parquet"],
            "error: Cannot read logs.parquet",
        ),
        (["experiment", "{d}/rct.csv", "--group-col", "arm"], "error: Missing column(s) arm"),
        (
            ["fairness", "{d}/rct.csv", "--attribute", "religion"],
            "error: Missing column(s) for the fairness audit",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(files, args, message):
    d, _ = files
    res = _run(*[a.format(d=d) for a in args])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith(message)
    assert "Traceback" not in res.output


def test_experiment_table_and_json(files):
    d, _ = files
    res = _run("experiment", d / "rct.csv", "--covariate", "age")
    assert res.exit_code == 0, res.output
    assert (
        "ITT (Neyman)" in res.stdout and "ITT (Lin, HC2)" in res.stdout and "log-rank" in res.stdout
    )
    doc = json.loads(_run("experiment", d / "rct.csv", "--json").stdout)
    assert doc["n_treatment"] + doc["n_control"] == 2000
    assert doc["sample_ratio"]["expected_share"] == 0.2


def test_fairness_json(files):
    d, _ = files
    res = _run(
        "fairness", d / "rct.csv", "--attribute", "gender", "--attribute", "origin", "--json"
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["multiple_testing"] == "holm"
    assert {g["attribute"] for g in doc["groups"]} == {"gender", "origin"}


def test_report_writes_self_contained_html(files, tmp_path):
    d, _ = files
    out = tmp_path / "report.html"
    res = _run(
        "report",
        "--out",
        out,
        "--logs",
        d / "logs.parquet",
        "--target-probs",
        d / "target.npy",
        "--rct",
        d / "rct.csv",
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.count("data:image/png;base64,") == 3  # policy values, KM curves, fairness bars
    assert "http://" not in html and "https://" not in html
