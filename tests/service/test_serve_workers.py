"""``nbi serve --workers 2``: metrics aggregated over the worker processes; option checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.api import CASE, METRICS, rec_body
from tests.helpers.promtool import check_metrics
from tests.helpers.redis_server import free_port

pytestmark = pytest.mark.integration
NBI = str(Path(sys.executable).parent / "nbi")


def _recommendations_total(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "nbi_recommendations"
        for s in family.samples
        if s.name == "nbi_recommendations_total"
    )


def test_two_workers_share_one_metrics_view(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "NBI_SQLITE_PATH": str(tmp_path / "nbi.sqlite3"),
        "NBI_POLICY": "uniform",
        "NBI_LEARNING": "worker",
    }
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [NBI, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.1)
        n = 24
        for i in range(n):  # a new connection each time, so the OS spreads them over workers
            r = httpx.post(url + "/v1/recommendations", json=rec_body(f"0101{i:06d}"), headers=CASE)
            assert r.status_code == 200, r.text
        pids = {p.stem.rsplit("_", 1)[-1] for p in prom_dir.glob("counter_*.db")}
        assert len(pids) == 2, pids  # both workers write to the shared directory
        for _ in range(6):  # whichever worker answers a scrape, it reports all decisions
            text = httpx.get(url + "/metrics", headers=METRICS).text
            assert _recommendations_total(text) == n
        checked = check_metrics(text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    # structured logs: one JSON object per line, decisions logged, never a raw citizen id
    lines = (tmp_path / "serve.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    assert sum(e.get("msg") == "decision" for e in entries) == n
    raw_ids = [f"0101{i:06d}" for i in range(n)]
    assert not any(raw in line for raw in raw_ids for line in lines)


def test_several_workers_with_inprocess_learning_are_refused(tmp_path):
    env = {
        **os.environ,
        "NBI_SQLITE_PATH": str(tmp_path / "x.sqlite3"),
        "NBI_LEARNING": "inprocess",
    }
    r = subprocess.run(
        [NBI, "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and "--learning worker" in r.stderr


def test_dev_defaults_are_refused_outside_dev(tmp_path):
    env = {**os.environ, "NBI_SQLITE_PATH": str(tmp_path / "x.sqlite3"), "NBI_ENVIRONMENT": "prod"}
    r = subprocess.run(
        [NBI, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode != 0 and "development default" in (r.stderr + r.stdout)
