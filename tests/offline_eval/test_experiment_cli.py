"""``nbi experiment``: column options, continuous outcomes, two-sided IV, horizon, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.errors import ExperimentDataError
from offline_eval.experiment import ExperimentSpec, analyse
from service.cli import build_app

RUNNER = CliRunner()
SEEDED = Path(__file__).parent / "reference" / "trial_seeded.csv"


def _run(*args: object):
    return RUNNER.invoke(build_app(), [str(a) for a in args])


def _json(*args: object) -> dict:
    res = _run("experiment", *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def rct(tmp_path_factory) -> Path:
    """Renamed columns, a continuous outcome, 52 weeks of follow-up, received in both arms."""
    frame = pd.read_csv(SEEDED).rename(
        columns={"group": "arm", "received": "got_programme", "weeks_to_job": "wk"}
    )
    frame["arm"] = frame["arm"].map({"treatment": "T", "control": "C"})
    path = tmp_path_factory.mktemp("exp") / "trial.csv"
    frame.to_csv(path, index=False)
    return path


def test_continuous_outcome_no_longer_crashes(rct):
    doc = _json(rct, "--group-col", "arm", "--treatment-label", "T", "--control-label", "C",
                "--outcome-col", "benefit_weeks")  # fmt: skip
    assert doc["outcome"]["type"] == "continuous" and doc["mde_basis"] == "pooled SD"
    assert doc["mde"] > 0 and doc["outcome"]["sd_pooled"] > 1
    assert doc["survival"] is None  # no `weeks_to_job` column under that name


def test_every_column_option_and_the_horizon(rct):
    base = ("--group-col", "arm", "--treatment-label", "T", "--control-label", "C")
    doc52 = _json(rct, *base, "--received-col", "got_programme", "--time-col", "wk",
                  "--horizon", "52")  # fmt: skip
    doc26 = _json(rct, *base, "--received-col", "got_programme", "--time-col", "wk")
    c = doc52["compliance"]
    assert c["received_col"] == "got_programme"
    assert c["rate_control"] == pytest.approx(0.4123, abs=1e-4)  # as given, not forced to 0
    assert c["first_stage"]["f_stat"] > 10 and not c["first_stage"]["weak"]
    km52, km26 = doc52["survival"]["km"]["T"], doc26["survival"]["km"]["T"]
    assert max(km52["times"]) > 26 >= max(km26["times"])  # 52 weeks are not cut at 26
    assert doc52["survival"]["follow_up_col"] == "follow_up_weeks"  # picked up by default
    for key in ("times", "survival", "ci_low", "ci_high", "at_risk"):
        assert len(km52[key]) == len(km52["times"])
    assert all(lo <= s <= hi for lo, s, hi in zip(km52["ci_low"], km52["survival"],
                                                   km52["ci_high"], strict=True))  # fmt: skip
    assert doc52["logrank"]["p_value"] == doc52["survival"]["logrank"]["p_value"]


def test_event_column_lifelines_style(tmp_path):
    frame = pd.DataFrame(
        {
            "group": ["treatment"] * 4 + ["control"] * 4,
            "employed": [1, 0, 1, 1, 0, 0, 1, 0],
            "t": [3, 40, 10, 60, 52, 20, 5, 52],
            "e": [1, 0, 1, 1, 0, 1, 1, 0],
        }
    )
    frame.to_csv(tmp_path / "f.csv", index=False)
    doc = _json(tmp_path / "f.csv", "--time-col", "t", "--event-col", "e", "--horizon", "52")
    treat = doc["survival"]["km"]["treatment"]
    assert treat["times"] == [3.0, 10.0]  # the job at week 60 is after the horizon
    assert treat["at_risk"] == [4, 3]


def test_hc3_and_text_output(rct):
    res = _run("experiment", rct, "--group-col", "arm", "--treatment-label", "T",
               "--control-label", "C", "--covariate", "age", "--hc", "HC3",
               "--received-col", "got_programme", "--time-col", "wk", "--horizon", "52")  # fmt: skip
    assert res.exit_code == 0, res.output
    for text in ("ITT (Lin, HC3)", "first stage (robust F)", "Kaplan-Meier T", "log-rank"):
        assert text in res.stdout


def test_old_column_names_still_work(tmp_path):
    frame = pd.read_csv(SEEDED).rename(columns={"received": "complied"})
    frame.to_csv(tmp_path / "old.csv", index=False)
    doc = _json(tmp_path / "old.csv")
    assert doc["compliance"]["received_col"] == "complied"
    assert doc["survival"]["time_col"] == "weeks_to_job" and doc["survival"]["horizon"] == 26


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcome-col", "nope"], "error: Missing column(s) nope in the RCT file"),
        (["--received-col", "nope"], "error: Missing column(s) nope for the received treatment"),
        (["--time-col", "nope"], "error: Missing column(s) nope for the time to event"),
        (["--event-col", "nope"], "error: Missing column(s) nope for the event flag"),
        (["--follow-up-col", "nope"], "error: Missing column(s) nope for the follow-up"),
        (["--covariate", "nope"], "error: Missing covariate column(s): nope"),
        (["--outcome-col", "target_group"], "error: Column 'target_group' (the outcome) must be numeric"),
        (["--received-col", "group"], "error: Column 'group' (received treatment) must be numeric"),
        (["--time-col", "target_group"], "error: Column 'target_group' (weeks to the event) must be numeric"),
        (["--event-col", "age"], "error: Column 'age' (event flag) must be 0/1"),
        (["--time-col", "benefit_weeks", "--event-col", "employed", "--horizon", "0"],
         "error: The horizon must be a number of weeks > 0"),
        (["--horizon", "-3"], "error: The horizon must be a number of weeks > 0"),
        (["--horizon", "inf"], "error: The horizon must be a number of weeks > 0"),
        (["--hc", "HC1"], "error: Unknown variance type 'HC1'"),
        (["--treatment-label", "control"], "error: The treatment and control labels are the same"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args, message):
    res = _run("experiment", SEEDED, *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith(message), res.stderr
    assert "Traceback" not in res.output


def test_bad_time_values_are_domain_errors():
    frame = pd.DataFrame({"group": ["treatment", "treatment", "control", "control"],
                          "employed": [1, 0, 1, 0], "weeks_to_job": [2.0, np.nan, -1.0, np.nan]})  # fmt: skip
    with pytest.raises(ExperimentDataError, match="weeks >= 0"):
        analyse(frame)
    frame["weeks_to_job"] = [2.0, np.nan, 1.0, np.nan]
    frame["e"] = [1, 1, 1, 0]
    with pytest.raises(ExperimentDataError, match="have an event but no time"):
        analyse(frame, ExperimentSpec(event_col="e"))
    with pytest.raises(ExperimentDataError, match="needs a time column"):
        analyse(frame.drop(columns="weeks_to_job"), ExperimentSpec(event_col="e"))


@pytest.mark.slow
def test_researcher_flow_on_the_simulators_output(tmp_path):
    """README: ``nbi simulate run`` then ``nbi experiment run/decisions.csv`` gives KM and
    log-rank with observable covariates only."""
    out = tmp_path / "run"
    res = _run("simulate", "run", "--policy", "uniform", "--weeks", "16", "--scale", "0.05",
               "--seed", "3", "--out", out, "--no-progress", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = _json(out / "decisions.csv", "--covariate", "target_group", "--covariate", "age_band",
                "--covariate", "gender", "--covariate", "origin")  # fmt: skip
    surv = doc["survival"]
    assert surv["time_col"] == "weeks_to_job" and surv["follow_up_col"] == "follow_up_weeks"
    assert set(surv["km"]) == {"treatment", "control"} and surv["logrank"]["chi2"] >= 0
    decisions = pd.read_csv(out / "decisions.csv")
    # KM at the horizon agrees with the employed flag (same column convention)
    for arm, km in surv["km"].items():
        rate = decisions.loc[decisions["group"] == arm, "employed"].mean()
        assert 1 - km["survival"][-1] == pytest.approx(rate, abs=1e-12)
    assert doc["compliance"]["rate_control"] == 0.0  # no recommendations in the control arm
    assert doc["lin_adjusted"]["hc"] == "HC2"
