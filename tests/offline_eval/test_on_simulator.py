"""OPE accuracy on the simulator's logs, whose true policy values are exact."""

from __future__ import annotations

import numpy as np
import pytest

from offline_eval.estimators import IPS, SNIPS, DoublyRobust, SwitchDR
from offline_eval.logs import LoggedBandit


@pytest.mark.slow
def test_estimators_within_ten_percent_of_simulator_truth():
    from simulator.logs import generate_logs

    sim = generate_logs(6000, seed=7)
    logs = LoggedBandit.from_dataframe(sim.frame, context_columns=sim.context_columns)
    # Target: 50/50 mix of the oracle and uniform-over-eligible (support kept by the logger).
    eligible = sim.eligible.astype(float)
    target = 0.5 * sim.oracle_probs() + 0.5 * eligible / eligible.sum(axis=1, keepdims=True)
    truth = sim.true_policy_value(target)
    for est in (IPS(), SNIPS(), DoublyRobust(), SwitchDR()):
        e = est.estimate(logs, target)
        # Rewards are Bernoulli with mean ~0.7; weights here are <= ~10, so SE ~ 0.01-0.02 on a
        # value ~0.75: 10 % (~0.075) is > 3.5 SE.
        assert abs(e.value - truth) / truth < 0.10, (est.name, e.value, truth)
    assert np.all(logs.pmf[eligible == 0] == 0)


def test_evaluate_cli_reports_the_true_value_from_the_simulator_sidecar(tmp_path):
    """`nbi evaluate` on a simulator log shows each target's exact value on the test split."""
    import json

    from typer.testing import CliRunner

    from service.cli import build_app
    from simulator.logs import generate_logs

    sim = generate_logs(3000, seed=11)
    path = sim.write(tmp_path / "logs.parquet")
    eligible = sim.eligible.astype(float)
    target = eligible / eligible.sum(axis=1, keepdims=True)  # uniform over the eligible
    np.save(tmp_path / "target.npy", target)
    res = CliRunner().invoke(
        build_app(),
        ["evaluate", str(path), "--target-probs", str(tmp_path / "target.npy"), "--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)["evaluations"][0]
    assert doc["true_value"] == pytest.approx(sim.true_policy_value(target), rel=1e-12)
    # and a log without a sidecar reports no truth rather than a made-up one
    (tmp_path / "logs.truth.npz").unlink()
    res = CliRunner().invoke(
        build_app(),
        ["evaluate", str(path), "--target-probs", str(tmp_path / "target.npy"), "--json"],
    )
    assert json.loads(res.stdout)["evaluations"][0]["true_value"] is None
