"""Operator commands on the SQLite store while ``nbi serve`` runs reach the service, and the
service's writes stay visible to them (deploy/README: "Operator guide").

Regression: the audit trail, seat ledger and erasure connections used to open the database
file with a plain ``open`` + ``close`` after the store's connection; closing that descriptor
dropped every POSIX lock of the service process on the file, so the first ``nbi`` command that
closed its connection deleted the WAL the service was still writing to: the kill switch set by
``nbi models kill`` never reached the service, and decisions made afterwards were invisible to
``nbi export`` (and lost on restart).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.redis_server import free_port
from tests.helpers.service_process import call, recommendation_body

NBI = str(Path(sys.executable).with_name("nbi"))


def _nbi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NBI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_admin_actions_and_exports_see_the_running_service(tmp_path: Path) -> None:
    db = tmp_path / "db" / "nbi.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env |= {
        "NBI_SQLITE_PATH": str(db),
        "NBI_MODEL_DIR": str(tmp_path / "models"),
        "NBI_POLICY": "uniform",
        "NBI_MODEL_APPROVAL": "auto",
        "NBI_MODEL_POLL_SECONDS": "0.2",
    }
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [NBI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while call_or_none(port) is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        assert _nbi("models", "list", env=env).returncode == 0  # opens and closes the store
        assert db.with_name(db.name + "-wal").exists()  # the service's WAL is still there
        kill = _nbi("models", "kill", env=env)
        assert kill.returncode == 0, kill.stderr
        deadline = time.monotonic() + 10  # one poll interval (0.2 s), with a margin
        while call(port, "GET", "/v1/models/versions")[1]["serving_mode"] != "practice":
            assert time.monotonic() < deadline, "the kill switch never reached the service"
            time.sleep(0.1)
        for i in range(5):  # decided after the CLI commands closed their connections
            status, _ = call(port, "POST", "/v1/recommendations", recommendation_body(i))
            assert status == 200  # noqa: PLR2004
        out = tmp_path / "export" / "d.csv"
        done = _nbi("export", "--out", str(out), "--include-open", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rct_rows"] == 5  # noqa: PLR2004
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def call_or_none(port: int) -> int | None:
    """``GET /healthz`` status, or ``None`` while the service does not answer."""
    try:
        return call(port, "GET", "/healthz")[0]
    except OSError:
        return None
