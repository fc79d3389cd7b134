"""Fault suite (``make faults``; also part of ``make test``): real processes, real signals.

* **Redis down 10 s and back** under a running ``nbi serve`` and ``nbi learner``: the API
  answers 503 ``store_unavailable`` with ``Retry-After`` (the first request after the crash
  within the client's retry budget, the rest at once), ``/metrics`` keeps answering and says
  ``nbi_store_up 0``, the learner process waits with backoff instead of exiting; once Redis is
  back from its AOF every acknowledged decision is there and the newest model holds exactly one
  update per acknowledged learnable outcome (0 lost, 0 double-learned, 0 never-learned).
* **3x overload**: an open-loop load (keep-alive connections, latency from the scheduled
  send time) at three times the measured saturation throughput is answered: the excess with
  503 and ``Retry-After``, quickly, the accepted requests with a p99 under 100 ms (asserted by
  ``make faults``); exactly one decision is stored per 200 answer (no work for a refused
  request); the process's memory comes back to its level before the load.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.service_process import (
    ADMIN_KEY,
    METRICS_KEY,
    NBI,
    call,
    recommendation_body,
    service_env,
    start_api,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]
STRICT = os.environ.get("NBI_FAULTS_STRICT") == "1"
"""``make faults`` runs this suite alone and asserts the latency targets; inside ``make test``
(two pytest workers sharing two cores with the rest of the suite) the figures are printed and
everything but the latency is asserted."""


def _metrics(port: int) -> tuple[float, str]:
    started = time.monotonic()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": METRICS_KEY}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return time.monotonic() - started, response.read().decode()


def _timed_recommendation(port: int, i: int) -> tuple[int, float, Any]:
    started = time.monotonic()
    status, body = call(port, "POST", "/v1/recommendations", recommendation_body(i))
    return status, time.monotonic() - started, body


def _learnable_round(port: int, start: int, n: int) -> tuple[set[str], int]:
    """``n`` decisions; every treatment one followed and reported employed. Returns the
    acknowledged event ids and the number of acknowledged learnable outcomes."""
    acknowledged: set[str] = set()
    learnable = 0
    for i in range(start, start + n):
        status, body = call(port, "POST", "/v1/recommendations", recommendation_body(i))
        assert status == 200, body
        acknowledged.add(body["event_id"])
        rec = body.get("recommendation")
        if body["group"] != "treatment" or rec is None:
            continue
        event_id = body["event_id"]
        status, answer = call(
            port,
            "POST",
            f"/v1/decisions/{event_id}/assignment",
            {"assigned_action_id": rec["action_id"]},
        )
        assert status == 200, answer
        # a job on the decision day: a later week would be later than today (422)
        outcome = {"event_id": event_id, "status": "employed", "weeks_to_job": 0}
        status, answer = call(port, "POST", "/v1/outcomes", outcome)
        assert status == 200, answer
        learnable += 1
    return acknowledged, learnable


def _n_updates(port: int) -> int:
    status, models = call(port, "GET", "/v1/models", key=ADMIN_KEY)
    assert status == 200, models
    return int(models.get("updates", -1))


def test_redis_down_ten_seconds_and_back(tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = RedisServer(redis_dir, appendonly=True, port=free_port()).start()
    env = service_env(
        server.url,
        "fault:",
        NBI_POLICY="uniform",
        NBI_DELAY_STRATEGY="at_once",
        NBI_MODEL_POLL_SECONDS="0.2",
        NBI_STORE_RETRY_AFTER_SECONDS="1",
    )
    api = learner = None
    try:
        api, port = start_api(env, tmp_path / "api.log")
        argv = [NBI, "learner", "--consumer", "f-1", "--snapshot-every", "1", "--block-ms", "200"]
        with (tmp_path / "learner.log").open("ab") as log:
            learner = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        acknowledged, learnable = _learnable_round(port, 0, 15)
        deadline = time.monotonic() + 30
        while "started" not in (tmp_path / "learner.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "learner.log").read_text()
            time.sleep(0.1)

        server.kill()  # kill -9: no shutdown, the AOF (appendfsync always) is what survives
        outage_started = time.monotonic()
        first = _timed_recommendation(port, 100)
        assert first[0] == 503, first
        assert first[1] < 3.0  # within the client's retry budget (about 1.2 s)
        assert first[2]["type"].endswith("/store-unavailable")
        during = [_timed_recommendation(port, 101 + k) for k in range(20)]
        assert all(status == 503 for status, _, _ in during)
        assert max(seconds for _, seconds, _ in during) < 0.5  # answered at once
        seconds, text = _metrics(port)
        assert seconds < 1.0
        assert "nbi_store_up 0.0" in text
        time.sleep(max(0.0, outage_started + 10.0 - time.monotonic()))  # 10 s down
        assert learner.poll() is None, (tmp_path / "learner.log").read_text()[-2000:]
        server.start()  # same port and directory: Redis reloads its AOF

        deadline = time.monotonic() + 15
        status = 0
        while time.monotonic() < deadline:
            status, _, _ = _timed_recommendation(port, 200)
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200
        _, text = _metrics(port)
        assert "nbi_store_up 1.0" in text
        more, more_learnable = _learnable_round(port, 300, 15)
        acknowledged |= more
        learnable += more_learnable

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _n_updates(port) != learnable:
            time.sleep(0.3)
        assert learner.poll() is None, (tmp_path / "learner.log").read_text()[-2000:]
        assert _n_updates(port) == learnable  # 0 lost, 0 double-learned, 0 never-learned
    finally:
        for proc in (api, learner):
            if proc is not None:
                proc.kill()
                proc.wait(10)
    from service.store.redis_store import RedisStore

    try:
        store = RedisStore(server.url, prefix="fault:")
        try:
            stored = {r.event_id for r in store.iter_records()}
            assert acknowledged <= stored  # every acknowledged decision survived
            assert store.learning_lag() == 0
        finally:
            store.close()
    finally:
        server.stop()


# ------------------------------------------------------------------------------ overload

_HEAD = (
    "POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    "X-API-Key: dev-case-key\r\nContent-Length: {n}\r\n\r\n"
)


class _Connections:
    """Keep-alive HTTP/1.1 connections, as a case system's pool: a request takes an idle
    one or opens a new one (an overloaded server makes the pool grow)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, body: bytes) -> tuple[int, str]:
        """One POST: (status, Retry-After)."""
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(_HEAD.format(n=len(body)).encode() + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, fields.get("retry-after", "")

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _closed_loop(port: int, seconds: float, senders: int) -> int:
    """Requests answered 200 in ``seconds`` by ``senders`` back-to-back senders."""
    import json

    pool = _Connections(port)
    done = 0
    stop_at = time.monotonic() + seconds

    async def sender(k: int) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop_at:
            body = json.dumps(recommendation_body(10_000 + k * 10_000 + i)).encode()
            i += 1
            status, _ = await pool.request(body)
            done += status == 200  # noqa: SIM113 (a counter shared by the senders)

    await asyncio.gather(*(sender(k) for k in range(senders)))
    pool.close()
    return done


async def _open_loop(port: int, rate: float, seconds: float) -> list[tuple[int, float, str]]:
    """Requests sent at a fixed ``rate`` whatever the answers; latency from the scheduled
    send time (no coordinated omission): (status, seconds, Retry-After)."""
    import json

    pool = _Connections(port)
    bodies = [
        json.dumps(recommendation_body(500_000 + i)).encode() for i in range(int(rate * seconds))
    ]
    start = time.monotonic()

    async def one(scheduled: float, body: bytes) -> tuple[int, float, str]:
        status, retry_after = await pool.request(body)
        return status, time.monotonic() - scheduled, retry_after

    tasks = []
    for i, body in enumerate(bodies):
        scheduled = start + i / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, body)))
    results = list(await asyncio.gather(*tasks))
    pool.close()
    return results


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_three_times_saturation_is_shed_fast_and_accepted_requests_stay_fast(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "NBI_STORE": "sqlite",
        "NBI_SQLITE_PATH": str(tmp_path / "nbi.sqlite3"),
        "NBI_LEARNING": "worker",
    }
    port = free_port()
    argv = [NBI, "serve", "--host", "127.0.0.1", "--port", str(port), "--store", "sqlite"]
    with (tmp_path / "api.log").open("ab") as log:
        api = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
                time.sleep(0.1)
        answered_200 = asyncio.run(_closed_loop(port, 2.0, 4))  # warm-up
        baseline_rss = _rss_kib(api.pid)
        saturated = asyncio.run(_closed_loop(port, 3.0, 4))
        answered_200 += saturated
        saturation = saturated / 3.0
        assert saturation > 10, saturation
        results = asyncio.run(_open_loop(port, 3 * saturation, 4.0))
        accepted = sorted(s for status, s, _ in results if status == 200)
        shed = [(s, retry) for status, s, retry in results if status == 503]
        others = [status for status, _, _ in results if status not in (200, 503)]
        assert not others, others
        assert shed, "3x saturation was not shed"
        assert all(retry == "1" for _, retry in shed)
        assert accepted, "nothing was accepted"
        p99 = accepted[min(len(accepted) - 1, int(0.99 * len(accepted)))]
        shed_s = sorted(s for s, _ in shed)
        figures = {
            "saturation_rps": saturation,
            "accepted": len(accepted),
            "shed": len(shed),
            "accepted_p50": accepted[len(accepted) // 2],
            "accepted_p99": p99,
            "shed_p50": shed_s[len(shed_s) // 2],
            "shed_p99": shed_s[int(0.99 * (len(shed_s) - 1))],
        }
        print(figures)
        if STRICT:  # make faults: the machine is this test's alone
            assert figures["accepted_p99"] < 0.1, figures
            assert figures["shed_p99"] < 0.1, figures
        time.sleep(2.0)
        after_rss = _rss_kib(api.pid)
        assert after_rss < baseline_rss * 1.15 + 20_000, (baseline_rss, after_rss)
    finally:
        api.terminate()
        api.wait(20)
    from service.store.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "nbi.sqlite3")
    try:  # one stored decision per 200 answer, none for a refused request
        assert sum(1 for _ in store.iter_records()) == answered_200 + len(accepted)
    finally:
        store.close()
