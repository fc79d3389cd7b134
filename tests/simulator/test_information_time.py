"""The simulated trial in information time, and per-person true effects."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay, ReplayResult
from simulator.report import rct_all_outcomes, rct_summary, summary

WEEKS, LAG, H = 36, 4, 26


@pytest.fixture(scope="module")
def result() -> ReplayResult:
    config = SimulationConfig(scale=0.1, lag_weeks=LAG)
    return Replay(build_policy("uniform", seed=2), config, weeks=WEEKS, seed=5).run()


def test_only_outcomes_known_at_the_end_count(result: ReplayResult) -> None:
    d = result.decisions
    rct = rct_summary(result, lag_weeks=LAG)
    cutoff = WEEKS - H - LAG
    known = d[d["week"] <= cutoff]
    t, c = known[known["group"] == "treatment"], known[known["group"] == "control"]
    assert rct["cutoff_week"] == cutoff and rct["horizon_weeks"] == H
    assert (rct["n_treatment"], rct["n_control"]) == (len(t), len(c))
    assert rct["n_treatment"] + rct["n_control"] + rct["pending_treatment"] + rct[
        "pending_control"
    ] == len(d)
    assert rct["pending_control"] == (d["group"] == "control").sum() - len(c) > 0
    assert rct["difference"] == pytest.approx(t["employed"].mean() - c["employed"].mean())
    # A decision one week younger than the cutoff is pending although its outcome was drawn.
    assert (d["week"] == cutoff + 1).any()
    # Every simulated outcome (what a real analysis at that date cannot see) is more data
    # and so a smaller MDE: the overstatement information time removes.
    everything = rct_all_outcomes(result)
    assert everything["n_treatment"] + everything["n_control"] == len(d)
    assert everything["pending_treatment"] == everything["pending_control"] == 0
    assert everything["mde"] < rct["mde"]
    assert summary(result, lag_weeks=LAG)["rct"] == rct


def test_true_itt_is_the_per_person_truth(result: ReplayResult) -> None:
    d = result.decisions
    rct = rct_summary(result, lag_weeks=LAG)
    known = d[(d["week"] <= rct["cutoff_week"])]
    treat = known[known["group"] == "treatment"]
    control = d[d["group"] == "control"]
    # Control citizens get practice as usual: no effect by construction.
    assert np.allclose(control["p_assigned"], control["p_practice"])
    expected = float((treat["p_assigned"] - treat["p_practice"]).mean())
    assert rct["true_itt"] == pytest.approx(expected, abs=1e-12)
    t_all = d[d["group"] == "treatment"]
    assert rct["true_itt_all"] == pytest.approx(
        float((t_all["p_assigned"] - t_all["p_practice"]).mean()), abs=1e-12
    )
    # The arm difference also carries who happened to land in each arm; it is not the ITT.
    arm_diff = (
        treat["p_assigned"].mean() - known.loc[known["group"] == "control", "p_assigned"].mean()
    )
    assert rct["true_arm_difference"] == pytest.approx(arm_diff)
    assert rct["true_arm_difference"] != pytest.approx(rct["true_itt"], abs=1e-6)


def test_nothing_known_yet_reports_pending_only() -> None:
    config = SimulationConfig(scale=0.05)
    short = Replay(build_policy("uniform", seed=0), config, weeks=4, seed=0).run()
    rct = rct_summary(short)
    assert rct["n_treatment"] == rct["n_control"] == 0
    assert rct["pending_treatment"] + rct["pending_control"] == len(short.decisions)
    assert "difference" not in rct
