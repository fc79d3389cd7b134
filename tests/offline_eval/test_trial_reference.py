"""``nbi experiment`` equals lifelines, statsmodels and linearmodels on the same data (to 1e-6).

The reference values (``reference/trial_reference.json``) and the data they were computed on
(``reference/*.csv``: lifelines' rossi and waltons, linearmodels' card, and a fixed-seed trial in
nbi's column convention) are checked in; ``reference/make_trial_reference.py`` regenerates them
with the peer libraries, which this test does not need. Covered: Kaplan-Meier with exponential
Greenwood intervals and the log-rank test over follow-ups of 39, 40, 52 and 70 weeks (with an
event column and with per-citizen follow-up), Lin's estimator with HC2 and HC3, the Neyman ITT,
two-sided Wald/2SLS with its robust SE and first-stage F, and the MDE of 0/1 and continuous
outcomes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.experiment import ExperimentResult, ExperimentSpec, analyse
from service.cli import build_app

REF = Path(__file__).parent / "reference"
DOC = json.loads((REF / "trial_reference.json").read_text())
CASES = {case["name"]: case for case in DOC["cases"]}
TOL = 1e-6


def _analyse(case: dict[str, Any], **override: Any) -> ExperimentResult:
    spec = {**case["spec"], **override}
    spec["covariates"] = tuple(spec.get("covariates", ()))
    return analyse(pd.read_csv(REF / case["data"]), ExperimentSpec(**spec))


def _close(ours: float, theirs: float) -> None:
    assert ours == pytest.approx(theirs, abs=TOL, rel=TOL)


def test_reference_covers_the_issue():
    assert set(DOC["versions"]) == {"lifelines", "statsmodels", "linearmodels"}
    horizons = {c["spec"].get("horizon") for c in DOC["cases"] if "survival" in c["expected"]}
    assert horizons - {26} == horizons and len(horizons) >= 3
    types = {c["expected"]["outcome_type"] for c in DOC["cases"]}
    assert types == {"binary", "continuous"}
    rates = [c["expected"]["iv"]["rate_control"] for c in DOC["cases"] if "iv" in c["expected"]]
    assert any(r > 0.3 for r in rates)  # control citizens receive the treatment too


@pytest.mark.parametrize("name", sorted(CASES))
def test_itt_lin_and_mde(name):
    case = CASES[name]
    exp = case["expected"]
    r = _analyse(case)
    assert r.outcome_type == exp["outcome_type"]
    _close(r.itt.estimate, exp["itt"]["estimate"])
    _close(r.itt.se, exp["itt"]["se"])
    _close(r.mde, exp["mde"])
    if exp["outcome_type"] == "continuous":
        _close(r.outcome_sd, exp["sd"])
    for hc in ("HC2", "HC3"):
        if f"lin_{hc}" in exp:
            lin = _analyse(case, hc=hc).lin
            assert lin is not None
            _close(lin.estimate, exp[f"lin_{hc}"]["estimate"])
            _close(lin.se, exp[f"lin_{hc}"]["se"])


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "iv" in c["expected"]))
def test_two_sided_iv_matches_linearmodels(name):
    case = CASES[name]
    iv = case["expected"]["iv"]
    c = _analyse(case).compliance
    assert c is not None
    _close(c.late.estimate, iv["late"])
    _close(c.late.se, iv["se"])
    _close(c.first_stage.f_stat, iv["f_stat"])
    _close(c.first_stage.p_value, iv["f_pval"])
    _close(c.rate_treatment, iv["rate_treatment"])
    _close(c.rate_control, iv["rate_control"])


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "survival" in c["expected"]))
def test_kaplan_meier_and_log_rank_match_lifelines(name):
    case = CASES[name]
    ref = case["expected"]["survival"]
    r = _analyse(case)
    assert r.survival is not None and r.logrank is not None
    assert r.survival.data.horizon == case["spec"]["horizon"]
    _close(r.logrank.chi2, ref["logrank"]["chi2"])
    _close(r.logrank.p_value, ref["logrank"]["p_value"])
    for arm, theirs in ref["km"].items():
        ours = r.km[arm]
        assert ours.times.tolist() == theirs["times"]
        assert ours.at_risk.tolist() == theirs["at_risk"]
        for key in ("survival", "ci_low", "ci_high"):
            np.testing.assert_allclose(getattr(ours, key), theirs[key], atol=TOL, rtol=TOL)
    assert max(max(k["times"]) for k in ref["km"].values()) <= case["spec"]["horizon"]


def test_horizon_is_not_cut_at_26_weeks():
    r = _analyse(CASES["rossi_52_weeks"])
    assert r.survival is not None
    assert max(float(km.times.max()) for km in r.km.values()) > 26


def test_cli_json_carries_the_reference_figures():
    """The same figures through ``nbi experiment --json`` with every new option."""
    case = CASES["seeded_continuous"]
    exp = case["expected"]
    args = [
        "experiment",
        str(REF / case["data"]),
        "--outcome-col",
        "benefit_weeks",
        "--received-col",
        "received",
        "--time-col",
        "weeks_to_job",
        "--follow-up-col",
        "follow_up_weeks",
        "--horizon",
        "39",
        "--covariate",
        "age",
        "--covariate",
        "target_group",
        "--hc",
        "HC3",
        "--json",
    ]
    res = CliRunner().invoke(build_app(), args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["outcome"]["type"] == "continuous"
    _close(doc["mde"], exp["mde"])
    assert doc["lin_adjusted"]["hc"] == "HC3"
    _close(doc["lin_adjusted"]["se"], exp["lin_HC3"]["se"])
    _close(doc["compliance"]["late"]["se"], exp["iv"]["se"])
    _close(doc["compliance"]["first_stage"]["f_stat"], exp["iv"]["f_stat"])
    surv = doc["survival"]
    assert surv["horizon"] == 39 and surv["follow_up_col"] == "follow_up_weeks"
    _close(surv["logrank"]["chi2"], exp["survival"]["logrank"]["chi2"])
    for arm, theirs in exp["survival"]["km"].items():
        km = surv["km"][arm]
        assert km["times"] == theirs["times"] and km["at_risk"] == theirs["at_risk"]
        np.testing.assert_allclose(km["ci_low"], theirs["ci_low"], atol=TOL)
