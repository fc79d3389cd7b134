"""The replay driven against the real decision service (in-process app and a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from simulator.config import SimulationConfig
from simulator.http_driver import HttpReplay
from tests.helpers.redis_server import free_port

CASE = {"X-API-Key": "dev-case-key"}
RESEARCHER = {"X-API-Key": "dev-researcher-key"}
NBI = str(Path(sys.executable).with_name("nbi"))


def test_driver_against_app(tmp_path: Path) -> None:
    settings = Settings(
        policy="uniform",
        sqlite_path=tmp_path / "nbi.sqlite3",
        model_dir=tmp_path / "models",
        simulated_time=True,  # outcomes of simulated weeks arrive seconds after the decision
        model_approval="auto",  # the simulation follows recommendations from the first one
    )
    with TestClient(create_app(settings), headers=CASE) as client:
        replay = HttpReplay(client, SimulationConfig(scale=0.02), weeks=30, seed=4)
        result = replay.run()
        d = result.decisions
        summary = client.get("/v1/experiment/summary", headers=RESEARCHER).json()
    assert len(d) > 100
    # Every citizen became one stored decision, with the service's group.
    n_treat = int((d["group"] == "treatment").sum())
    assert summary["treatment"]["decisions"] == n_treat
    assert summary["control"]["decisions"] == len(d) - n_treat
    # Each outcome that became known within the span was posted once and stored.
    assert summary["treatment"]["settled"] + summary["control"]["settled"] == replay.outcomes_posted
    due = d["week"] + d["job_week"].where(d["employed"], 25) + 1
    assert replay.outcomes_posted == int((due < 30).sum())
    treat = d[d["group"] == "treatment"]
    assert (treat["recommended"] >= 0).all() and (
        d.loc[d["group"] == "control", "recommended"] == -1
    ).all()
    assert result.policy == "service"


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(log.read_text()[-2000:])


def test_cli_url_against_real_service_process(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NBI_STORE": "sqlite",
        "NBI_SQLITE_PATH": str(tmp_path / "nbi.sqlite3"),
        "NBI_MODEL_DIR": str(tmp_path / "models"),
        "NBI_POLICY": "uniform",
        "NBI_SIMULATED_TIME": "true",
        "NBI_MODEL_APPROVAL": "auto",  # the simulation follows recommendations at once
    }
    log = tmp_path / "serve.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [NBI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(port, proc, log)
        run = subprocess.run(
            [
                NBI,
                "simulate",
                "run",
                "--url",
                f"http://127.0.0.1:{port}",
                "--api-key",
                "dev-case-key",
                "--weeks",
                "6",
                "--scale",
                "0.02",
                "--json",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        doc = json.loads(run.stdout)
        assert doc["policy"] == "service" and doc["totals"]["all"]["n"] > 20
        bad = subprocess.run(
            [
                NBI,
                "simulate",
                "run",
                "--url",
                f"http://127.0.0.1:{port}",
                "--api-key",
                "wrong",
                "--weeks",
                "1",
                "--scale",
                "0.02",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 2
        assert bad.stderr.strip().count("\n") == 0 and "HTTP 401" in bad.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
