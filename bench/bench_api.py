"""HTTP load benchmark of ``POST /v1/recommendations`` against its minimal real work.

For each store (Redis with ``appendfsync always``; SQLite WAL with ``synchronous=FULL``) the
service and the reference (``bench/reference_app.py``: key check, pseudonym, control split,
one bare pylibvw predict, pmf, top 4, a same-size answer and a durable write of a same-size
record) run under uvicorn with the same workers on 127.0.0.1; the load comes from ``wrk``
(installed with apt-get when missing) with a Lua script for the POST bodies. Measured, for 50
and 300 eligible actions: closed-loop throughput of 2xx answers (-> ratio; a 503 refusal is not
throughput), p50/p99, server CPU per answered request (and Redis CPU per request); an open-loop
run at a fixed 200 req/s with 300 actions (our own rate-limited client: latency from the
scheduled send time, so a stall is not hidden by coordinated omission) -> p99 ratio; the stored
bytes per decision record, and the same records in the plain form stored before the compact
codec (before/after). Each measurement alternates nbi and the reference for
:data:`ROUNDS` rounds and reports the median of the paired per-round ratios (with each
round's ratio), so a slow run of either side alone does not decide the figure.

``python -m bench.run_all api [--quick]`` (``--quick``: one round of 3 s).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.redis_server import RedisServer, free_port  # noqa: E402

WORKERS = 2
CONNECTIONS = 16
ROUNDS = 3
"""Alternating rounds of nbi then the reference; the ratios reported are the median of the
paired per-round ratios (one 10 s run of the reference alone varied by up to 2.5x here)."""
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
        try:
            wait_http(f"http://127.0.0.1:{port}{health}")
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_api(store: str, url: str, policy: str = "vw") -> Server:
    """``nbi serve`` on ``store`` (``redis``: ``url`` is the Redis URL; ``sqlite``: a path)."""
    port = free_port()
    env = {
        "NBI_POLICY": policy,
        "NBI_STORE": store,
        "NBI_LEARNING": "worker",
        "NBI_LOG_LEVEL": "WARNING",
        # the benchmark measures capacity: a closed loop of CONNECTIONS clients is not an
        # overload, so admission control gets a slot per connection (with the default 2 slots
        # the standing-queue rule refuses most of wrk's requests in 5 ms, and the 503s would
        # be counted as throughput); the ratios below count 2xx answers only anyway
        "NBI_MAX_CONCURRENT_REQUESTS": str(CONNECTIONS),
        "NBI_MAX_QUEUED_REQUESTS": "1000",
        "NBI_QUEUE_TIMEOUT_SECONDS": "30",
        # ...but decisions keep the production default's 2 threads per process (the default
        # of one thread per slot would run 16 threads on 2 cores: GIL contention, not capacity)
        "NBI_DECISION_THREADS": "2",
    }
    if store == "redis":
        env |= {"NBI_REDIS_URL": url, "NBI_REDIS_PREFIX": "bench:"}
    else:
        env["NBI_SQLITE_PATH"] = url
    nbi = str(Path(sys.executable).with_name("nbi"))
    argv = [nbi, "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--store", store]
    return Server(argv, env, port, "/healthz")


def start_reference(store: str, url: str) -> Server:
    """The minimal real-work reference (``bench/reference_app.py``) on the same store kind."""
    port = free_port()
    env = {"REF_STORE": store}
    env |= {"REF_REDIS_URL": url} if store == "redis" else {"REF_SQLITE_PATH": url}
    argv = [sys.executable, "-m", "uvicorn", "bench.reference_app:create", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    argv += ["--log-level", "warning", "--no-access-log", "--loop", "uvloop"]
    argv += ["--http", "httptools"]
    return Server(argv, env, port, "/healthz")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's master and its workers)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += process_tree(int(child))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _run_id() -> str:
    """A token unique to one load run: its citizen ids are new to the service."""
    return uuid.uuid4().hex[:12]


def run_wrk(wrk: str, port: int, body_file: Path, seconds: int, connections: int) -> dict[str, Any]:
    argv = [wrk, "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    argv += ["-s", str(HERE / "wrk" / "post.lua"), f"http://127.0.0.1:{port}/v1/recommendations"]
    # a fresh citizen per request and per run (a repeated id is a returning citizen)
    env = {**os.environ, "NBI_BODY": str(body_file), "NBI_KEY": CASE_KEY, "NBI_RUN": _run_id()}
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=True, timeout=seconds + 30
    )
    match = re.search(r"^JSON (\{.*\})$", out.stdout, re.MULTILINE)
    assert match, out.stdout + out.stderr
    res: dict[str, Any] = json.loads(match.group(1))
    res["rps"] = round(res["requests"] / res["duration_s"], 1)
    # goodput: a refusal (503) or an error is not throughput
    res["ok_rps"] = round((res["requests"] - res["non2xx"]) / res["duration_s"], 1)
    return res


def fixed_rate(
    port: int, body: dict[str, Any], rate: float, seconds: float, n_threads: int = 4
) -> dict[str, Any]:
    """Open-loop client: each thread sends on its own fixed schedule over a keep-alive connection."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    template = json.dumps(body)
    run = _run_id()
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
            payload = template.replace("__CITIZEN__", f"r{run}-{k}-{i}")
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


def _measured(
    wrk: str, server: Server, body_file: Path, seconds: int, store_pid: int | None
) -> dict[str, Any]:
    """wrk throughput and latency, with server CPU (and store CPU) per request."""
    pids = process_tree(server.proc.pid)
    before = cpu_seconds(pids)
    store_before = cpu_seconds([store_pid]) if store_pid else 0.0
    res = run_wrk(wrk, server.port, body_file, seconds, CONNECTIONS)
    n = max(1, res["requests"] - res["non2xx"])  # per answered (2xx) request
    res["server_cpu_us_per_request"] = round(1e6 * (cpu_seconds(pids) - before) / n, 1)
    if store_pid:
        store_cpu = cpu_seconds([store_pid]) - store_before
        res["redis_cpu_us_per_request"] = round(1e6 * store_cpu / n, 1)
    return res


def _mean(sizes: list[int]) -> float:
    return round(sum(sizes) / max(1, len(sizes)), 1)


def reference_record_bytes(store: str, url: str) -> float:
    """Mean stored bytes of one of the reference's records (the record text, as written)."""
    if store == "redis":
        import redis

        client = redis.Redis.from_url(url)
        try:
            entries: Any = client.xrevrange("ref:records", count=200)
            sizes = [len(fields[b"record"]) for _, fields in entries]
        finally:
            client.close()
    else:
        import sqlite3

        conn = sqlite3.connect(url)
        try:
            rows = conn.execute("SELECT length(record) FROM r LIMIT 200").fetchall()
        finally:
            conn.close()
        sizes = [int(r[0]) for r in rows]
    return _mean(sizes)


def nbi_record_bytes(store: str, url: str) -> dict[str, float]:
    """Mean bytes of up to 200 of nbi's decision records: as stored (``nbi``), and the same
    records in the plain form stored before the compact codec (``service/store/
    record_codec.py``: eligible ids and pmf as JSON lists; ``nbi_before_compact_codec``),
    read once through the store and re-encoded."""
    from service.store.record_codec import RecordCodec

    texts: list[Any]
    if store == "redis":
        from service.store.redis_store import RedisStore

        redis_store = RedisStore(url, prefix="bench:")
        try:
            client = redis_store.client
            keys = list(client.scan_iter(match="bench:rec:*", count=1000))[:200]
            texts = [t for t in (client.hget(k, "json") for k in keys) if t]
            records = [redis_store.codec.loads(t) for t in texts]
        finally:
            redis_store.close()
    else:
        from service.store.sqlite_store import SQLiteStore

        sqlite_store = SQLiteStore(url)
        try:
            rows = sqlite_store._conn.execute("SELECT record FROM decisions LIMIT 200").fetchall()  # noqa: SLF001
            texts = [r[0] for r in rows]
            records = [sqlite_store.codec.loads(t) for t in texts]
        finally:
            sqlite_store.close()
    plain = RecordCodec(lambda _fingerprint: None)  # no catalog in use: the plain lists
    return {
        "nbi": _mean([len(t) for t in texts]),
        "nbi_before_compact_codec": _mean([len(plain.dumps(r)) for r in records]),
    }


def _median_index(values: list[float]) -> int:
    """Index of the round whose value is the (lower) median: its raw figures are reported."""
    order = sorted(range(len(values)), key=values.__getitem__)
    return order[(len(values) - 1) // 2]


def _bench_store(
    wrk: str, store: str, tmp: Path, bodies: dict[int, Path], seconds: int, rounds: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    redis_server = None
    if store == "redis":
        (tmp / f"redis-{store}").mkdir()
        redis_server = RedisServer(tmp / f"redis-{store}", appendonly=True).start()
        api_url = ref_url = redis_server.url
        store_pid = redis_server.process.pid if redis_server.process else None
    else:
        api_url, ref_url = str(tmp / "nbi.sqlite3"), str(tmp / "ref.sqlite3")
        store_pid = None
    api = ref = None
    try:
        api = start_api(store, api_url)
        ref = start_reference(store, ref_url)
        for n_actions, body_file in bodies.items():
            run_wrk(wrk, api.port, body_file, 1, 4)  # warm-up (imports, caches, pools)
            run_wrk(wrk, ref.port, body_file, 1, 4)
            paired = [
                (
                    _measured(wrk, api, body_file, seconds, store_pid),
                    _measured(wrk, ref, body_file, seconds, store_pid),
                )
                for _ in range(rounds)
            ]
            ratios = [o["ok_rps"] / max(t["ok_rps"], 1e-9) for o, t in paired]
            ours, theirs = paired[_median_index(ratios)]
            out[f"actions_{n_actions}"] = {
                "nbi": ours,
                "reference": theirs,
                "throughput_ratio": round(statistics.median(ratios), 3),
                "throughput_ratio_rounds": [round(r, 3) for r in ratios],
                "cpu_ratio": round(
                    statistics.median(
                        o["server_cpu_us_per_request"] / t["server_cpu_us_per_request"]
                        for o, t in paired
                    ),
                    2,
                ),
            }
        body300 = json.loads(bodies[300].read_text())
        fixed_s = max(4, seconds)
        fixed = [
            (
                fixed_rate(api.port, body300, 200.0, fixed_s),
                fixed_rate(ref.port, body300, 200.0, fixed_s),
            )
            for _ in range(rounds)
        ]
        p99_ratios = [o["p99_ms"] / t["p99_ms"] for o, t in fixed]
        ours_fixed, theirs_fixed = fixed[_median_index(p99_ratios)]
        out["fixed_rate_200rps_300_actions"] = {
            "nbi": ours_fixed,
            "reference": theirs_fixed,
            "p99_ratio": round(statistics.median(p99_ratios), 2),
            "p99_ratio_rounds": [round(r, 2) for r in p99_ratios],
        }
        out["record_bytes"] = {
            **nbi_record_bytes(store, api_url),
            "reference": reference_record_bytes(store, ref_url),
        }
    finally:
        for server in (api, ref):
            if server is not None:
                server.stop()
        if redis_server is not None:
            redis_server.stop()
    return out


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The benchmark's figures as a table (the JSON has the details).

    Examples
    --------
    >>> side = {"ok_rps": 500.0, "server_cpu_us_per_request": 2800.0}
    >>> ref = {"ok_rps": 2000.0, "server_cpu_us_per_request": 700.0}
    >>> row = {"nbi": side, "reference": ref, "throughput_ratio": 0.25,
    ...        "throughput_ratio_rounds": [0.25, 0.3, 0.2], "cpu_ratio": 4.0}
    >>> fixed = {"nbi": {"p99_ms": 9.0}, "reference": {"p99_ms": 6.0}, "p99_ratio": 1.5,
    ...          "p99_ratio_rounds": [1.5]}
    >>> store = {"actions_50": row, "fixed_rate_200rps_300_actions": fixed,
    ...          "record_bytes": {"nbi": 2700.0, "nbi_before_compact_codec": 7000.0,
    ...                           "reference": 4000.0}}
    >>> for line in summary_lines({"redis": store}):
    ...     print(line)
    store   offers  nbi req/s  ref req/s  ratio  rounds            CPU/request nbi vs ref
    redis   50          500.0     2000.0   0.25  0.25 0.30 0.20    2.80 vs 0.70 ms (x4.00)
    redis   p99 at 200 req/s, 300 offers: 9.0 vs 6.0 ms, ratio 1.50 (rounds 1.50)
    redis   record bytes: nbi 2700 (7000 before the compact codec), reference 4000
    """
    lines = [
        f"{'store':<8}{'offers':<8}{'nbi req/s':>9}  {'ref req/s':>9}  {'ratio':>5}  "
        f"{'rounds':<16}  CPU/request nbi vs ref"
    ]
    for store in ("redis", "sqlite"):
        data = result.get(store)
        if not data:
            continue
        for key in sorted(
            (k for k in data if k.startswith("actions_")),
            key=lambda k: int(k.removeprefix("actions_")),
        ):
            row = data[key]
            ours, theirs = row["nbi"], row["reference"]
            rounds = " ".join(f"{r:.2f}" for r in row["throughput_ratio_rounds"])
            lines.append(
                f"{store:<8}{key.removeprefix('actions_'):<8}{ours['ok_rps']:>9.1f}  "
                f"{theirs['ok_rps']:>9.1f}  {row['throughput_ratio']:>5.2f}  {rounds:<16}  "
                f"{ours['server_cpu_us_per_request'] / 1000:.2f} vs "
                f"{theirs['server_cpu_us_per_request'] / 1000:.2f} ms (x{row['cpu_ratio']:.2f})"
            )
        fixed = data.get("fixed_rate_200rps_300_actions")
        if fixed:
            rounds = " ".join(f"{r:.2f}" for r in fixed["p99_ratio_rounds"])
            lines.append(
                f"{store:<8}p99 at 200 req/s, 300 offers: {fixed['nbi']['p99_ms']:.1f} vs "
                f"{fixed['reference']['p99_ms']:.1f} ms, ratio {fixed['p99_ratio']:.2f} "
                f"(rounds {rounds})"
            )
        sizes = data.get("record_bytes")
        if sizes:
            lines.append(
                f"{store:<8}record bytes: nbi {sizes['nbi']:.0f} "
                f"({sizes['nbi_before_compact_codec']:.0f} before the compact codec), "
                f"reference {sizes['reference']:.0f}"
            )
    return lines


def run(quick: bool = False) -> dict[str, Any]:
    wrk = ensure_wrk()
    seconds = 3 if quick else 10
    rounds = 1 if quick else ROUNDS
    result: dict[str, Any] = {
        "workers": WORKERS,
        "wrk_seconds": seconds,
        "connections": CONNECTIONS,
        "rounds": rounds,
        "redis": "private redis-server, appendonly yes, appendfsync always",
        "sqlite": "WAL, synchronous=FULL",
        "reference": "bench/reference_app.py: key check, pseudonym, control split, bare "
        "pylibvw cb_adf predict, pmf, top 4, same-size answer and record, durable write",
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }
    tmp = Path(tempfile.mkdtemp(prefix="nbi-bench-"))
    try:
        bodies = {}
        for n_actions in (50, 300):
            bodies[n_actions] = tmp / f"body{n_actions}.json"
            bodies[n_actions].write_text(json.dumps(request_body(n_actions)))
        for store in ("redis", "sqlite"):
            result[store] = _bench_store(wrk, store, tmp, bodies, seconds, rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    print("\n".join(summary_lines(result)), flush=True)
    return result


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
