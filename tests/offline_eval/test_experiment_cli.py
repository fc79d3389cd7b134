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


@pytest.fixture(scope="module")
def trial_with_extras(tmp_path_factory) -> Path:
    """The seeded trial with the simulator's default names and columns a covariate must not be."""
    frame = pd.read_csv(SEEDED).rename(columns={"received": "complied"})
    rng = np.random.default_rng(7)
    treated = frame["group"] == "treatment"
    frame["trt"] = treated.astype(int)  # the arm as 0/1: constant within each arm
    frame["arm_label"] = np.where(treated, "rec", "prac")
    site = np.where(treated, rng.integers(0, 3, len(frame)), rng.integers(3, 5, len(frame)))
    frame["site"] = [f"jc-{s}" for s in site]  # 3 job centres in treatment, 2 in control
    frame["latent_type"] = rng.integers(0, 4, len(frame))
    frame["assigned"] = rng.integers(0, 10, len(frame))  # recorded at the decision
    path = tmp_path_factory.mktemp("cov") / "trial.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("covariate", "message"),
    [
        ("group", "error: --covariate 'group' is the arm itself (--group-col)"),
        ("employed", "error: --covariate 'employed' is the outcome (--outcome-col)"),
        ("complied", "error: --covariate 'complied' is the received treatment (--received-col)"),
        ("weeks_to_job", "error: --covariate 'weeks_to_job' is the time to event (--time-col)"),
        ("trt", "error: --covariate 'trt' is constant within each arm, so it is collinear"),
        ("arm_label", "error: --covariate 'arm_label' is constant within each arm"),
        ("site", "error: --covariate 'site' determines the arm (its values are collinear"),
        ("latent_type", "error: --covariate 'latent_type' is the simulator's hidden truth"),
    ],
)
def test_covariates_that_are_not_pre_treatment_are_refused(trial_with_extras, covariate, message):
    """QA D3: the arm, a 0/1 copy of it or the outcome as a covariate gave a confident,
    wrong Lin ITT (+21.6 pp, p=0) instead of an error; README: latent_type is never one."""
    res = _run("experiment", trial_with_extras, "--covariate", "age", "--covariate", covariate)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith(message), res.stderr
    assert "Lin" not in res.stdout


def test_named_received_and_event_columns_are_refused_as_covariates(rct, tmp_path):
    base = ("--group-col", "arm", "--treatment-label", "T", "--control-label", "C")
    res = _run("experiment", rct, *base, "--received-col", "got_programme",
               "--covariate", "got_programme")  # fmt: skip
    assert res.exit_code == 2 and "is the received treatment" in res.stderr
    frame = pd.DataFrame({"group": ["treatment", "control"] * 6, "employed": [1, 0, 0, 1] * 3,
                          "t": [3, 9, 40, 5] * 3, "e": [1, 0, 0, 1] * 3})  # fmt: skip
    frame.to_csv(tmp_path / "ll.csv", index=False)
    res = _run("experiment", tmp_path / "ll.csv", "--time-col", "t", "--event-col", "e",
               "--outcome-col", "employed", "--covariate", "e")  # fmt: skip
    assert res.exit_code == 2 and "is the event flag (--event-col)" in res.stderr


def test_post_treatment_covariate_warns_but_runs(trial_with_extras):
    res = _run("experiment", trial_with_extras, "--covariate", "assigned", "--json")
    assert res.exit_code == 0, res.output
    warning = res.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: --covariate 'assigned'")
    assert "post-treatment" in warning[0]
    doc = json.loads(res.stdout)
    assert doc["warnings"] == [warning[0].removeprefix("warning: ")]
    assert doc["lin_adjusted"] is not None
    ok = _run("experiment", trial_with_extras, "--covariate", "age", "--json")
    assert ok.exit_code == 0 and ok.stderr == "" and json.loads(ok.stdout)["warnings"] == []


def test_unknown_group_labels_are_capped_in_the_message(tmp_path):
    """QA D16: a group column overwritten by scores listed 15 kB of labels on one line."""
    frame = pd.read_csv(SEEDED)
    frame["group"] = np.linspace(0.1, 0.9, len(frame)).round(6).astype(str)
    frame.to_csv(tmp_path / "scored.csv", index=False)
    res = _run("experiment", tmp_path / "scored.csv")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert len(res.stderr) < 300, res.stderr
    assert f", ...] ({len(frame)} distinct) in column 'group'" in res.stderr
    assert "'0.1', '0.100" in res.stderr  # the first few, sorted


@pytest.mark.parametrize("share", ["0", "1", "-0.2", "nan"])
def test_control_share_outside_zero_one_names_the_option(share):
    """QA D16: ``--control-share 0`` said "Expected 0 < control share < 1 and rows, got 0.0, 704"."""
    res = _run("experiment", SEEDED, "--control-share", share)
    assert res.exit_code == 2
    assert res.stderr.startswith(
        "error: The configured control share (--control-share) must be strictly between 0 and 1"
    ), res.stderr
    assert "rows" not in res.stderr


def test_employed_zero_with_an_earlier_job_time_warns_with_the_count(tmp_path):
    """QA D17: ``employed=0`` with ``weeks_to_job=4`` was analysed silently (the ITT counts no
    job, Kaplan-Meier a job at week 4)."""
    frame = pd.read_csv(SEEDED)
    assert frame.loc[frame["employed"] == 1, "weeks_to_job"].max() == 25.0
    bad = frame.index[(frame["employed"] == 0) & frame["weeks_to_job"].isna()][:4]
    frame.loc[bad, "weeks_to_job"] = [4.0, 12.0, 24.5, 25.0]  # week 25 may be past the horizon
    frame.to_csv(tmp_path / "mismatch.csv", index=False)
    res = _run("experiment", tmp_path / "mismatch.csv", "--json")
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith("warning: 3 row(s) have employed=0 but a job in 'weeks_to_job'")
    assert json.loads(res.stdout)["warnings"][0].startswith("3 row(s) have employed=0")
    # consistent files stay quiet, also with a horizon beyond the outcome's (README: a 52-week
    # follow-up with --horizon 52; jobs in weeks 26-52 have employed=0 there)
    for args in ([], ["--horizon", "52"]):
        ok = _run("experiment", SEEDED, *args, "--json")
        assert ok.exit_code == 0 and ok.stderr == "", ok.stderr
        assert json.loads(ok.stdout)["warnings"] == []


def test_text_output_keeps_a_gap_between_label_and_value(tmp_path):
    """QA D18: ``mean cost treatment / control32,567 / 23,572`` (the label ran into the value)."""
    frame = pd.read_csv(SEEDED)
    frame["benefit_dkk"] = frame["benefit_weeks"] * 1_800.0 + 10_000.0
    frame["programme_cost_dkk"] = np.where(frame["group"] == "treatment", 14_522.0, 6_476.0)
    frame.to_csv(tmp_path / "cost.csv", index=False)
    res = _run("experiment", tmp_path / "cost.csv")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    cost = next(line for line in lines if line.startswith("  mean cost"))
    assert cost[29:31] == "  " and cost[31].isdigit(), cost
    for line in lines:
        if not line.startswith("net value (DKK"):  # the section title has no value
            assert "  " in line.strip(), line  # label, at least two spaces, value


def test_covariates_that_only_together_determine_the_arm_are_refused():
    frame = pd.read_csv(SEEDED)
    rng = np.random.default_rng(3)
    frame["a"] = rng.normal(size=len(frame))
    frame["b"] = (frame["group"] == "treatment").astype(float) - frame["a"]
    with pytest.raises(ExperimentDataError, match="The covariates 'age', 'a', 'b' together"):
        analyse(frame, ExperimentSpec(covariates=("age", "a", "b")))
    analyse(frame, ExperimentSpec(covariates=("age", "a")))  # either alone is fine
