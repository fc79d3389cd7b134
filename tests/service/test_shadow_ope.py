"""Issue 9: off-policy evaluation from shadow logs covers the policy's true value.

A real ``nbi serve`` (SQLite, ``NBI_POLICY=uniform``) is switched to shadow mode by the admin
API and driven by ``nbi simulate run --url``: the service answers every treatment decision
without a suggestion, the simulated caseworkers decide as usual (practice as usual), and the
service logs the uniform policy's pmf. ``nbi export`` writes the shadow file (caseworker as
the logger: practice-as-usual propensities of the assignment) and the target file (the logged
pmf); ``nbi evaluate`` estimates the policy's value, and the 95 % intervals must hold the
simulator's exact truth (the mean over the shadow decisions of P(job within H) under a uniform
draw among the offers each citizen could get). Everything is seeded, so the run is the same
every time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers.redis_server import free_port
from tests.helpers.service_process import ADMIN_KEY, CASE_KEY, call

NBI = str(Path(sys.executable).with_name("nbi"))
IMPORTANCE_WEIGHTED = ("ips", "snips", "dr", "sndr")
"""Estimators whose interval accounts for the logger's propensities (DM's interval is the
reward model's sampling error only, not its bias, so it is not held to the truth)."""


def _nbi(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NBI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [NBI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(log.read_text()[-2000:])


def test_shadow_logs_estimate_covers_the_true_value_of_the_policy(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NBI_STORE": "sqlite",
        "NBI_SQLITE_PATH": str(tmp_path / "nbi.sqlite3"),
        "NBI_MODEL_DIR": str(tmp_path / "models"),
        "NBI_POLICY": "uniform",
        "NBI_SIMULATED_TIME": "true",
        "NBI_CAPACITY_TRACKING": "false",  # the simulator sends only offers with free seats
        "NBI_MODEL_APPROVAL": "auto",
    }
    proc, port = _serve(env, tmp_path / "serve.log")
    try:
        status, body = call(port, "PUT", "/v1/models/mode", {"mode": "shadow"}, key=ADMIN_KEY)
        assert status == 200 and body["serving_mode"] == "shadow", body
        run = _nbi(
            "simulate", "run", "--url", f"http://127.0.0.1:{port}", "--api-key", CASE_KEY,
            "--weeks", "10", "--scale", "0.05", "--seed", "1", "--json", "--no-progress",
            env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    doc = json.loads(run.stdout)
    shadow = doc["shadow"]
    # Every treatment decision was answered without a suggestion: practice as usual.
    assert shadow["decisions"] == doc["totals"]["treatment"]["n"] >= 150  # noqa: PLR2004
    truth = shadow["true_value_uniform"]

    out = tmp_path / "export" / "decisions.parquet"
    done = _nbi("export", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    assert files["log_rows"] == 0  # nothing was served live
    # Every shadow decision settled (the driver posts all outcomes after a shadow run).
    assert files["shadow_rows"] == shadow["decisions"]

    logs = pd.read_parquet(files["shadow_file"])
    target = np.load(files["shadow_target_file"])
    rows = np.arange(len(logs))
    logger = logs[[f"pmf_{k}" for k in range(target.shape[1])]].to_numpy()
    eligible = target > 0
    # The target is the uniform policy's logged pmf; the logger is practice as usual on the
    # same eligible offers, and the logged action is the caseworker's (not the hidden pick).
    assert np.allclose(target[eligible], np.repeat(1 / eligible.sum(1), eligible.sum(1)))
    assert ((logger > 0) == eligible).all()
    assert np.allclose(logs["propensity"], logger[rows, logs["action"]])
    assert not np.allclose(logs["propensity"], target[rows, logs["action"]])
    # The practice propensities are the caseworkers' real ones: the importance weights of
    # any target average 1 up to sampling error (4 standard errors).
    weights = target[rows, logs["action"]] / logs["propensity"].to_numpy()
    assert abs(weights.mean() - 1.0) < 4 * weights.std(ddof=1) / np.sqrt(len(weights))

    ev = _nbi(
        "evaluate", files["shadow_file"], "--target-probs", files["shadow_target_file"],
        "--json", env=env,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    (evaluation,) = json.loads(ev.stdout)["evaluations"]
    assert evaluation["n_rounds"] == shadow["decisions"]
    estimates = {e["estimator"]: e for e in evaluation["estimates"]}
    for name in IMPORTANCE_WEIGHTED:
        est = estimates[name]
        assert est["ci_low"] <= truth <= est["ci_high"], (name, est, truth)
