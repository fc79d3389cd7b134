"""The trial's net value in DKK: `nbi experiment`, the HTML report and the simulator, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.cost_benefit import trial_net_value
from service.cli import build_app
from simulator.config import SimulationConfig
from simulator.policies import build_policy
from simulator.replay import Replay
from simulator.report import net_value_by_quarter, summary, true_net_value_by_quarter

Z95 = 1.959963984540054


def _trial(path: Path) -> Path:
    # 4 copies of 3 treated and 3 control citizens (12 per arm)
    rows = []
    for k in range(4):
        gender = "female" if k % 2 else "male"  # the report's fairness audit needs one trait
        for benefit, programme in ((1000.0, 500.0), (3000.0, 0.0), (2000.0, 1000.0)):
            rows.append(("treatment", 1, benefit, programme, benefit / 1800.0, gender))
        for benefit in (4000.0, 2000.0, 3000.0):
            rows.append(("control", 0, benefit, 0.0, benefit / 1800.0, gender))
    cols = ["group", "employed", "benefit_dkk", "programme_cost_dkk", "benefit_weeks", "gender"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    return path


# Hand computation. Treatment cost = benefit + programme = 1500, 3000, 3000 (x4): mean 2500,
# sum of squares 4 x (1000^2 + 500^2 + 500^2) = 6e6, variance 6e6 / 11. Control: 4000, 2000,
# 3000 (x4): mean 3000, sum of squares 4 x 2e6 = 8e6, variance 8e6 / 11.
NET = 3000.0 - 2500.0
SE = math.sqrt((6e6 / 11) / 12 + (8e6 / 11) / 12)  # 325.669...
LOW, HIGH = NET - Z95 * SE, NET + Z95 * SE  # -138.30, 1138.30


def test_net_value_agrees_with_the_hand_computation(tmp_path: Path) -> None:
    nv = trial_net_value(pd.read_csv(_trial(tmp_path / "t.csv")))
    assert nv is not None
    assert round(SE, 3) == 325.669  # noqa: PLR2004
    assert nv.net_value_per_citizen.estimate == pytest.approx(NET)
    assert nv.net_value_per_citizen.ci_low == pytest.approx(LOW)
    assert nv.net_value_per_citizen.ci_high == pytest.approx(HIGH)
    # benefit weeks = DKK / 1800 (360 DKK x 5 days): days saved = (3000 - 2000) / 360
    assert nv.benefit_days_saved_per_citizen is not None
    assert nv.benefit_days_saved_per_citizen.estimate == pytest.approx(1000.0 / 360.0)
    assert trial_net_value(pd.DataFrame({"group": ["treatment"], "employed": [1]})) is None


def test_experiment_and_report_show_the_net_value(tmp_path: Path) -> None:
    trial = _trial(tmp_path / "t.csv")
    runner = CliRunner()
    r = runner.invoke(build_app(), ["experiment", str(trial), "--control-share", "0.5"])
    assert r.exit_code == 0, r.output
    assert "net value per citizen" in r.output
    assert f"{NET:+,.0f}  [{LOW:+,.0f}, {HIGH:+,.0f}]" in r.output  # +500  [-138, +1,138]
    out = tmp_path / "report.html"
    args = ["report", "--rct", str(trial), "--out", str(out), "--control-share", "0.5"]
    r = runner.invoke(build_app(), args)
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert '<h2 id="cost-benefit">' in page
    assert f"{NET:+,.0f} DKK [{LOW:+,.0f}, {HIGH:+,.0f}]" in page
    assert f"{NET * 1000:+,.0f} DKK" in page  # per 1,000 citizens: +500,000 DKK


def test_simulator_net_value_per_quarter_is_the_trial_formula_on_each_quarter() -> None:
    config = SimulationConfig(scale=0.05, offers_per_family=1)
    result = Replay(build_policy("uniform", seed=1), config, weeks=26, seed=4).run()
    d = result.decisions
    assert (d["programme_cost_dkk"] >= 0).all()
    table = net_value_by_quarter(result)
    assert len(table) == 2  # noqa: PLR2004
    q0 = d[d["week"] < 13]  # noqa: PLR2004
    cost = q0["benefit_dkk"] + q0["programme_cost_dkk"]
    t, c = cost[q0["group"] == "treatment"], cost[q0["group"] == "control"]
    net = c.mean() - t.mean()
    se = math.sqrt(c.var(ddof=1) / len(c) + t.var(ddof=1) / len(t))
    row = table.iloc[0]
    assert row["net_value"] == pytest.approx(net)
    assert row["net_value_low"] == pytest.approx(net - Z95 * se)
    # TRUE net value versus practice: the served policy (treatment) and every reference
    truth = true_net_value_by_quarter(result)
    assert {"served", "practice", "oracle", "uniform"} <= set(truth["policy"])
    assert (truth.loc[truth["policy"] == "practice", "net_value"] == 0).all()
    t0 = q0[q0["group"] == "treatment"]
    served = (t0["cost_practice"] - t0["true_cost_dkk"]).mean()
    got = truth[(truth["quarter"] == 0) & (truth["policy"] == "served")]["net_value"]
    assert got.iloc[0] == pytest.approx(served)
    doc = summary(result)
    assert len(doc["net_value_by_quarter"]) == 2 and doc["true_net_value_by_quarter"]  # noqa: PLR2004
