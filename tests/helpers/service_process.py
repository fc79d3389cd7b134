"""Real service processes for tests: ``nbi serve`` / ``nbi learner`` as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers.redis_server import free_port

CASE_KEY = "dev-case-key"
ADMIN_KEY = "dev-admin-key"
METRICS_KEY = "dev-metrics-key"
NBI = str(Path(sys.executable).with_name("nbi"))


def service_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """Environment of a service process bound to ``redis_url``."""
    return {
        **os.environ,
        "NBI_STORE": "redis",
        "NBI_REDIS_URL": redis_url,
        "NBI_REDIS_PREFIX": prefix,
        "NBI_LEARNING": "worker",
        "NBI_MODEL_APPROVAL": "auto",  # every snapshot serves at once (no approval step)
        **extra,
    }


def start_api(
    env: dict[str, str], log: Path, *, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``nbi serve --store redis`` on a free port and wait for ``/healthz``.

    If the process exits at start (e.g. the port was taken meanwhile by another test
    process), it is retried on a new port, up to three times.
    """
    for _ in range(2):
        try:
            return _start_api_once(env, log, workers)
        except _ExitedError:
            continue
    return _start_api_once(env, log, workers)


class _ExitedError(RuntimeError):
    """``nbi serve`` exited before it answered."""


def _start_api_once(
    env: dict[str, str], log: Path, workers: int
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [NBI, "serve", "--host", "127.0.0.1", "--port", str(port), "--store", "redis"]
    argv += ["--workers", str(workers)]
    with log.open("ab") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"nbi serve exited with {proc.returncode}: {log.read_text()[-2000:]}"
            raise _ExitedError(msg)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    msg = f"nbi serve did not answer: {log.read_text()[-2000:]}"
    raise RuntimeError(msg)


def call(
    port: int, method: str, path: str, body: Any = None, key: str = CASE_KEY
) -> tuple[int, Any]:
    """One JSON request; returns ``(status, decoded body)``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 (loopback)
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={
            "Content-Type": "application/json",
            "X-API-Key": key,
            "Authorization": f"Bearer {key}",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def recommendation_body(i: int) -> dict[str, Any]:
    """A valid recommendation request for citizen number ``i``."""
    return {
        "citizen_id": f"citizen-{i:05d}",
        "context": {
            "target_group": "dagpenge",
            "age": 30 + i % 30,
            "education": "vocational",
            "weeks_unemployed": 30,
            "last_sector": "construction",
            "cv_tokens": ["welding"],
        },
    }
