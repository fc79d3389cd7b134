"""``nbi simulate`` through the real root Typer app."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from service.cli import build_app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(build_app(), ["simulate", *args])


def test_calibrate_passes_and_fails_out_of_tolerance() -> None:
    ok = invoke("calibrate", "--n", "20000", "--json")
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["ok"] is True and len(doc["moments"]) == 10
    table = invoke("calibrate", "--n", "20000")
    assert table.exit_code == 0 and "mean_completed_spell_weeks" in table.stdout
    # A deep recession (hazards x0.6) is not the calibrated scenario: spells get longer.
    bad = invoke("calibrate", "--n", "5000", "--business-cycle", "0.6")
    assert bad.exit_code == 1
    assert "OUT" in bad.stdout and "out of tolerance" in bad.stderr


def test_run_json_out_dir_and_determinism(tmp_path: Path) -> None:
    args = ["run", "--policy", "vw", "--weeks", "30", "--scale", "0.05", "--seed", "3"]
    first = invoke(*args, "--json", "--no-progress", "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["policy"] == "vw" and doc["weeks"] == 30 and doc["n_learned"] > 50
    assert {"difference", "ci_low", "ci_high", "mde", "true_itt", "pending_control"} <= set(
        doc["rct"]
    )
    second = invoke(*args, "--json", "--no-progress", "--out", str(tmp_path / "b"))
    for name in ("weekly.csv", "by_group.csv", "decisions.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert json.loads(second.stdout)["totals"] == doc["totals"]
    for png in ("values_by_quarter.png", "learning_curve.png", "cumulative_regret.png"):
        data = (tmp_path / "a" / png).read_bytes()
        assert data.startswith(b"\x89PNG")
    html = (tmp_path / "a" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<img" in html  # noqa: PLR2004
    assert "http" not in html  # self-contained
    b64 = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(b64).startswith(b"\x89PNG")
    weekly = pd.read_csv(tmp_path / "a" / "weekly.csv")
    assert set(weekly["group"]) == {"treatment", "control"}


def test_run_table_output() -> None:
    res = invoke("run", "--policy", "oracle", "--weeks", "5", "--scale", "0.05", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "treatment" in res.stdout and "ITT treatment-control" in res.stdout
    # Five weeks: no 26-week outcome is known yet; the summary says so instead of guessing.
    assert "0 outcomes known" in res.stdout and "not estimable yet" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--policy", "bogus"], "unknown policy 'bogus'"),
        (["run", "--weeks", "0"], "--weeks must be in"),
        (["run", "--compliance", "1.5"], "compliance must be in [0, 1]"),
        (["run", "--capacity-scale", "-1"], "capacity_scale must be >= 0"),
        (["run", "--equity-reserve", "1.5"], "equity_reserve_share must be in [0, 1]"),
        (["calibrate", "--n", "5"], "--n must be at least 100"),
        (["logs", "--out", "x.txt"], "--out must end in .parquet or .csv"),
        (["logs", "--out", "x.csv", "--logging", "vw"], "unknown logging policy"),
        (
            ["run", "--weeks", "2", "--scale", "0.0005", "--no-progress"],
            "the run made no decisions",
        ),
    ],
)
def test_bad_input_one_clear_line(args: list[str], message: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in res.output


def test_logs_command_writes_parquet(tmp_path: Path) -> None:
    out = tmp_path / "logs.parquet"
    res = invoke("logs", "--out", str(out), "--n-rounds", "500", "--logging", "uniform", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["n_rounds"] == 500 and doc["true_value_oracle"] > doc["true_value_logging"]
    frame = pd.read_parquet(out)
    assert len(frame) == 500 and (tmp_path / "logs.truth.npz").exists()


def test_run_options_reach_the_simulation() -> None:
    base = ["run", "--policy", "uniform", "--weeks", "30", "--scale", "0.05", "--json"]
    default = json.loads(invoke(*base, "--no-progress").stdout)
    # A baseline does not learn: the delay strategy changes nothing in the outcomes.
    at_once = json.loads(invoke(*base, "--no-progress", "--delay", "at_once").stdout)
    assert at_once["totals"] == default["totals"]
    bad = invoke(*base, "--no-progress", "--delay", "soon")
    assert bad.exit_code == 2 and "unknown --delay" in bad.output
    lagged = json.loads(invoke(*base, "--no-progress", "--lag", "8").stdout)
    assert lagged["n_learned"] < default["n_learned"]
    assert lagged["totals"] == default["totals"]  # the lag changes learning, not outcomes
    capped = json.loads(invoke(*base, "--no-progress", "--capacity-scale", "0.05").stdout)
    assert capped["totals"] != default["totals"]


def test_oracle_runs_past_the_horizon() -> None:
    """Outcomes learned after week 26 asked the oracle for a truth it only has per decision."""
    res = invoke("run", "--policy", "oracle", "--weeks", "28", "--scale", "0.01", "--json")
    assert res.exit_code == 0, res.output


def test_run_defaults_are_the_simulation_configs() -> None:
    """The CLI states its defaults as literals (so ``nbi --help`` imports no numpy); they
    must stay those of :class:`~simulator.config.SimulationConfig`."""
    import dataclasses

    import typer.main

    from simulator.config import SimulationConfig

    group = typer.main.get_command(build_app())
    run = group.commands["simulate"].commands["run"]  # type: ignore[attr-defined]
    cli = {p.name: p.default for p in run.params}
    config = {f.name: f.default for f in dataclasses.fields(SimulationConfig)}
    pairs = {
        "scale": "scale",
        "compliance": "compliance",
        "control_share": "control_share",
        "lag": "lag_weeks",
        "capacity_scale": "capacity_scale",
        "offers_per_family": "offers_per_family",
        "equity_reserve": "equity_reserve_share",
    }
    assert {c: cli[c] for c in pairs} == {c: config[f] for c, f in pairs.items()}
