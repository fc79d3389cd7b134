"""Streamed evaluation (offline_eval.streaming) gives the in-memory path's results.

The log is the simulator's, with the full catalog (K ~ 330 offers) and written in small row
groups, and the streamed path reads it in chunks that do not line up with the row groups, so
every estimate crosses chunk and row-group boundaries. The only differences allowed are
floating-point summation order: 1e-12 on point estimates, 1e-9 on interval ends.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from bandit.policies import make_policy
from offline_eval.ci import CIConfig
from offline_eval.cli import _raw_context_columns
from offline_eval.evaluation import PolicyEvaluation, build_estimators, evaluate_named
from offline_eval.evaluation import evaluate_target as evaluate_in_memory
from offline_eval.logs import read_frame, read_logs
from offline_eval.reward_model import RidgeRewardModel
from offline_eval.streaming import LogFile, evaluate_file
from offline_eval.targets import actions_of, eligible_mask
from service.cli import build_app
from simulator.config import SimulationConfig
from simulator.logs import generate_logs, write_logs_streamed

POINT_TOL = 1e-12
INTERVAL_TOL = 1e-9
FULL_CATALOG = SimulationConfig(scale=0.25, offers_per_family=0, capacity_scale=0.0)
TARGETS = ["uniform", "practice", "always:mentor"]


@pytest.fixture(scope="module")
def full_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "full.parquet"
    write_logs_streamed(path, 20_000, seed=5, config=FULL_CATALOG, row_group_rows=4096)
    return path


def _in_memory_named(path, policies, ci=None):
    logs, frame = read_logs(path), read_frame(path)
    with np.load(path.with_name(path.stem + ".truth.npz")) as data:
        truth = data["expected_reward_matrix"]
    return evaluate_named(logs, frame[_raw_context_columns(frame)], policies, ci=ci, truth=truth)


def _assert_same(mem: list[PolicyEvaluation], streamed: list[PolicyEvaluation]) -> None:
    assert [e.policy for e in mem] == [e.policy for e in streamed]
    for a, b in zip(mem, streamed, strict=True):
        assert (a.n_rounds, a.note) == (b.n_rounds, b.note)
        assert abs(a.logged_value - b.logged_value) <= POINT_TOL
        assert (a.true_value is None) == (b.true_value is None)
        if a.true_value is not None:
            assert abs(a.true_value - b.true_value) <= POINT_TOL
        assert [e.estimator for e in a.estimates] == [e.estimator for e in b.estimates]
        for ea, eb in zip(a.estimates, b.estimates, strict=True):
            assert abs(ea.value - eb.value) <= POINT_TOL, (a.policy, ea.estimator)
            for lo, hi in ((ea.ci_low, eb.ci_low), (ea.ci_high, eb.ci_high)):
                assert math.isclose(lo, hi, rel_tol=INTERVAL_TOL, abs_tol=INTERVAL_TOL)
        da, db = a.diagnostics.to_dict(), b.diagnostics.to_dict()
        for key in da:
            assert math.isclose(da[key], db[key], rel_tol=1e-12, abs_tol=1e-15), key


@pytest.mark.slow
def test_streamed_named_targets_equal_the_in_memory_path_on_the_full_catalog(full_log):
    log = LogFile.open(full_log)
    assert log.n_actions > 300 and len(log.row_groups) == 5  # K ~ 330, 4096-row groups
    mem = _in_memory_named(full_log, TARGETS)
    streamed = evaluate_file(full_log, policies=TARGETS, chunk_rows=3000)
    _assert_same(mem, streamed)
    assert all(e.true_value is not None for e in streamed)
    assert "rounds fell back to uniform" in streamed[2].note


@pytest.mark.slow
def test_streamed_bootstrap_equals_the_in_memory_bootstrap(full_log):
    for resampling in ("binned", "exact"):
        ci = CIConfig(method="bootstrap", n_boot=400, seed=3, resampling=resampling)  # type: ignore[arg-type]
        mem = _in_memory_named(full_log, ["practice"], ci=ci)
        streamed = evaluate_file(full_log, policies=["practice"], ci=ci, chunk_rows=5000)
        _assert_same(mem, streamed)


def test_streamed_target_file_and_learned_policy_equal_the_in_memory_path(tmp_path):
    sim = generate_logs(1500, seed=12)
    path = sim.write(tmp_path / "small.parquet")
    rng = np.random.default_rng(0)
    raw = rng.random(sim.eligible.shape) * sim.eligible
    target = raw / raw.sum(axis=1, keepdims=True)
    np.save(tmp_path / "target.npy", target)
    logs = read_logs(path)
    for method in ("robust", "analytic"):
        ci = CIConfig(method=method)  # type: ignore[arg-type]
        mem = evaluate_in_memory(
            logs,
            target,
            "target.npy",
            estimators=build_estimators(None, logs),
            ci=ci,
            truth=sim.expected_reward_matrix,
        )
        streamed = evaluate_file(path, target_probs=tmp_path / "target.npy", ci=ci, chunk_rows=400)
        _assert_same([mem], streamed)
    # a learning policy is trained round by round on the first part, in both paths alike
    mem_named = _in_memory_named(path, ["river"])
    _assert_same(mem_named, evaluate_file(path, policies=["river"], chunk_rows=256))


def test_batch_probabilities_equal_the_per_round_policy(full_log):
    logs = read_logs(full_log).subset(np.arange(600))
    frame = read_frame(full_log).iloc[:600]
    raw = frame[_raw_context_columns(frame)]
    columns = {str(c): raw[c].to_numpy() for c in raw.columns}
    mask, actions = eligible_mask(logs), actions_of(logs)
    for name in ("uniform", "practice"):
        policy = make_policy(name)
        batch = policy.batch_probabilities(columns, mask, actions)  # type: ignore[attr-defined]
        for i, context in enumerate(raw.to_dict(orient="records")):
            idx = np.flatnonzero(mask[i])
            one = policy.probabilities(context, [actions[j] for j in idx])
            assert np.abs(batch[i, idx] - one).max() <= 1e-15, (name, i)
            assert not batch[i, ~mask[i]].any()


def test_chunked_ridge_fit_equals_the_one_chunk_fit(full_log):
    logs = read_logs(full_log).subset(np.arange(7000))
    model = RidgeRewardModel()
    whole = model.predict_matrix(logs)
    step = 900
    parts = [logs.subset(np.arange(s, min(s + step, 7000))) for s in range(0, 7000, step)]
    fitted = model.fit(lambda: iter(parts), 7000, logs.n_actions)
    chunked = np.concatenate([fitted.predict(p, i * step) for i, p in enumerate(parts)])
    assert np.abs(whole - chunked).max() <= 1e-12


def test_cli_streams_parquet_and_matches_csv_in_memory(tmp_path):
    """`nbi evaluate` streams a Parquet log; the same log as CSV goes the in-memory way."""
    sim = generate_logs(2000, seed=4)
    sim.write(tmp_path / "log.parquet")
    sim.write(tmp_path / "log.csv")
    docs = []
    for name in ("log.parquet", "log.csv"):
        res = CliRunner().invoke(
            build_app(),
            [
                "evaluate",
                str(tmp_path / name),
                "--policy",
                "practice",
                "--policy",
                "uniform",
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.stdout)["evaluations"])
    for a, b in zip(*docs, strict=True):
        assert a["true_value"] == pytest.approx(b["true_value"], abs=POINT_TOL)
        for ea, eb in zip(a["estimates"], b["estimates"], strict=True):
            assert ea["estimator"] == eb["estimator"]
            assert abs(ea["value"] - eb["value"]) <= POINT_TOL


def test_streamed_bad_input_is_a_clear_error(tmp_path):
    sim = generate_logs(300, seed=1)
    path = sim.write(tmp_path / "l.parquet")
    np.save(tmp_path / "bad.npy", np.ones((300, 3)))
    res = CliRunner().invoke(
        build_app(), ["evaluate", str(path), "--target-probs", str(tmp_path / "bad.npy")]
    )
    assert res.exit_code == 2 and "target_probs.shape == (300, 11)" in res.stderr
    res = CliRunner().invoke(build_app(), ["evaluate", str(path), "--policy", "nope"])
    assert res.exit_code == 2 and "Unknown target policy 'nope'" in res.stderr
