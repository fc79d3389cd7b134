"""A decision answered with 200 survives kill -9 of the API and of Redis (AOF, fsync always).

Real processes only: a private redis-server with ``--appendonly yes --appendfsync always``, a
real ``nbi serve --store redis`` on a free port; both are SIGKILLed, Redis restarts from its
AOF and every event id the API returned must be there, intact.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bandit.control import Group
from service.store.redis_store import RedisStore
from tests.helpers.redis_server import RedisServer
from tests.helpers.service_process import call, recommendation_body, service_env, start_api

pytestmark = [pytest.mark.integration, pytest.mark.faults]
N = 25


def test_kill9_api_and_redis_loses_no_answered_decision(tmp_path):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = RedisServer(redis_dir, appendonly=True).start()
    api = None
    try:
        api, port = start_api(service_env(server.url, "dur:"), tmp_path / "api.log")
        answered = {}
        for i in range(N):
            status, body = call(port, "POST", "/v1/recommendations", recommendation_body(i))
            assert status == 200, body
            answered[body["event_id"]] = body
        os.kill(api.pid, signal.SIGKILL)
        api.wait(10)
        api = None
        server.kill()  # SIGKILL: no shutdown, no final rewrite

        server.start()  # same dir and port: loads the AOF
        store = RedisStore(server.url, prefix="dur:")
        try:
            stored = {r.event_id: r for r in store.iter_records()}
            assert set(stored) == set(answered)
            for event_id, answer in answered.items():
                record = store.get_decision(event_id)
                assert record.group.value == answer["group"]
                assert record.citizen_key.startswith("p_")  # pseudonym, never the raw id
                assert "citizen-" not in record.citizen_key
                if record.group is Group.TREATMENT:
                    assert abs(sum(record.pmf) - 1.0) < 1e-9
                    assert (
                        record.propensity == record.pmf[record.eligible.index(record.recommended)]
                    )
                    assert record.model_version == answer["model_version"]
            assert store.pending_count() == N
        finally:
            store.close()
    finally:
        if api is not None:
            api.kill()
        server.stop()


def test_redis_crash_under_a_running_api_answers_no_false_200(tmp_path):
    """kill -9 Redis while the API serves: requests during the outage either fail (non-200)
    or are durable; the API reconnects by itself once Redis is back from its AOF."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = RedisServer(redis_dir, appendonly=True).start()
    api = None
    try:
        api, port = start_api(service_env(server.url, "out:"), tmp_path / "api.log")
        answered: set[str] = set()
        statuses: list[int] = []

        def send(i: int) -> None:
            status, body = call(port, "POST", "/v1/recommendations", recommendation_body(i))
            statuses.append(status)
            if status == 200:
                answered.add(body["event_id"])

        for i in range(5):
            send(i)
        server.kill()
        restarter = threading.Timer(1.0, server.start)
        restarter.start()
        started = time.monotonic()
        send(5)  # during the outage: retried with backoff until Redis is back, or an error
        outage_wait = time.monotonic() - started
        for i in range(6, 10):
            send(i)
        restarter.join()
        for i in range(10, 15):  # after the restart: the same API process works again
            send(i)
        assert statuses[:5] == [200] * 5 and statuses[10:] == [200] * 5
        assert all(s == 200 or s >= 500 for s in statuses[5:10])  # never a false 4xx
        assert outage_wait > 0.5 or statuses[5] >= 500  # the request really met the outage

        os.kill(api.pid, signal.SIGKILL)
        api.wait(10)
        api = None
        server.kill()
        server.start()
        store = RedisStore(server.url, prefix="out:")
        try:
            assert {r.event_id for r in store.iter_records()} == answered
        finally:
            store.close()
    finally:
        if api is not None:
            api.kill()
        server.stop()
