"""HTTP load benchmark of ``POST /v1/recommendations`` (Redis store) vs a plain FastAPI app.

Both apps run under uvicorn with the same number of workers on 127.0.0.1; the load comes
from ``wrk`` (installed with apt-get when missing) with a Lua script for the POST bodies.
Measured:

* closed-loop throughput and p50/p99 latency with 50 and 300 eligible actions, and the same
  for the plain endpoint returning a constant -> throughput ratio;
* an open-loop run at a fixed 200 req/s with 300 actions (our own rate-limited client: sends
  are scheduled on a fixed clock and latency is measured from the scheduled time, so a stall
  is not hidden by coordinated omission) -> p50/p99.

``python -m bench.run_all api [--quick]``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.redis_server import RedisServer, free_port  # noqa: E402

WORKERS = 2
CONNECTIONS = 16
CASE_KEY = "dev-case-key"


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
        )
        path = shutil.which("wrk")
    if path is None:
        msg = "wrk is not installed and apt-get could not install it"
        raise RuntimeError(msg)
    return path


def request_body(n_actions: int) -> dict[str, Any]:
    from bandit.catalog import default_catalog
    from bandit.eligibility import filter_eligible
    from tests.helpers.contexts import citizen

    ctx = citizen(weeks_unemployed=30)
    eligible = list(filter_eligible(default_catalog(), ctx).eligible_ids)[:n_actions]
    assert len(eligible) == n_actions, len(eligible)
    return {
        "citizen_id": "__CITIZEN__",
        "context": json.loads(ctx.model_dump_json()),
        "eligible_action_ids": eligible,
    }


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:  # noqa: S310 (loopback)
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    msg = f"{url} did not come up"
    raise RuntimeError(msg)


class Server:
    """A uvicorn-served app as a subprocess."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, health: str) -> None:
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="nbi-bench-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        wait_http(f"http://127.0.0.1:{port}{health}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_api(redis_url: str, policy: str) -> Server:
    port = free_port()
    env = {
        "NBI_POLICY": policy,
        "NBI_STORE": "redis",
        "NBI_REDIS_URL": redis_url,
        "NBI_REDIS_PREFIX": "bench:",
        "NBI_LEARNING": "worker",
        "NBI_LOG_LEVEL": "WARNING",
    }
    nbi = str(Path(sys.executable).with_name("nbi"))
    argv = [nbi, "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--store", "redis"]
    return Server(argv, env, port, "/healthz")


def start_plain() -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.plain_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(WORKERS), "--log-level", "warning"]
    argv += ["--no-access-log"]
    return Server(argv, {}, port, "/docs")


def run_wrk(wrk: str, port: int, body_file: Path, seconds: int, connections: int) -> dict[str, Any]:
    argv = [wrk, "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    argv += ["-s", str(HERE / "wrk" / "post.lua"), f"http://127.0.0.1:{port}/v1/recommendations"]
    env = {**os.environ, "NBI_BODY": str(body_file), "NBI_KEY": CASE_KEY}
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=True, timeout=seconds + 30
    )
    match = re.search(r"^JSON (\{.*\})$", out.stdout, re.MULTILINE)
    assert match, out.stdout + out.stderr
    res: dict[str, Any] = json.loads(match.group(1))
    res["rps"] = round(res["requests"] / res["duration_s"], 1)
    return res


def fixed_rate(
    port: int, body: dict[str, Any], rate: float, seconds: float, n_threads: int = 4
) -> dict[str, Any]:
    """Open-loop client: each thread sends on its own fixed schedule over a keep-alive connection."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    template = json.dumps(body)
    start = time.perf_counter() + 0.2
    interval = n_threads / rate
    n_per_thread = int(seconds * rate / n_threads)

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {
            "Content-Type": "application/json",
            "X-API-Key": CASE_KEY,
            "Authorization": f"Bearer {CASE_KEY}",
        }
        local: list[float] = []
        for i in range(n_per_thread):
            scheduled = start + (k / rate) + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            payload = template.replace("__CITIZEN__", f"r{k}-{i}")
            conn.request("POST", "/v1/recommendations", body=payload, headers=headers)
            resp = conn.getresponse()
            resp.read()
            local.append(time.perf_counter() - scheduled)
            if resp.status != 200:
                with lock:
                    failures[0] += 1
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return {
        "target_rps": rate,
        "achieved_rps": round(n / elapsed, 1),
        "requests": n,
        "non2xx": failures[0],
        "p50_ms": round(1000 * latencies[n // 2], 3),
        "p99_ms": round(1000 * latencies[min(n - 1, int(0.99 * n))], 3),
        "max_ms": round(1000 * latencies[-1], 3),
    }


POLICIES = ("vw", "practice")
"""The default learner (VW) and a cheap rule policy: the gap between them is the model cost."""


def _bench_policy(
    wrk: str, policy: str, redis_url: str, plain: Server, bodies: dict[int, Path], seconds: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    api = start_api(redis_url, policy)
    try:
        for n_actions, body_file in bodies.items():
            run_wrk(wrk, api.port, body_file, 1, 4)  # warm-up (imports, caches, pools)
            ours = run_wrk(wrk, api.port, body_file, seconds, CONNECTIONS)
            ref = run_wrk(wrk, plain.port, body_file, seconds, CONNECTIONS)
            out[f"actions_{n_actions}"] = {
                "nbi": ours,
                "plain_fastapi": ref,
                "throughput_ratio": round(ours["rps"] / ref["rps"], 3),
            }
        body300 = json.loads(bodies[300].read_text())
        out["fixed_rate_200rps_300_actions"] = fixed_rate(api.port, body300, 200.0, max(4, seconds))
    finally:
        api.stop()
    return out


def run(quick: bool = False) -> dict[str, Any]:
    wrk = ensure_wrk()
    seconds = 3 if quick else 10
    result: dict[str, Any] = {
        "workers": WORKERS,
        "wrk_seconds": seconds,
        "connections": CONNECTIONS,
        "redis": "private redis-server, appendonly yes, appendfsync always",
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }
    tmp = Path(tempfile.mkdtemp(prefix="nbi-bench-"))
    (tmp / "redis").mkdir()
    redis_server = RedisServer(tmp / "redis", appendonly=True).start()
    plain = None
    try:
        plain = start_plain()
        bodies = {}
        for n_actions in (50, 300):
            bodies[n_actions] = tmp / f"body{n_actions}.json"
            bodies[n_actions].write_text(json.dumps(request_body(n_actions)))
        for policy in POLICIES:
            result[f"policy_{policy}"] = _bench_policy(
                wrk, policy, redis_server.url, plain, bodies, seconds
            )
    finally:
        if plain is not None:
            plain.stop()
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
