"""A decision answered with 200 survives kill -9 of the API and of Redis (AOF, fsync always).

Real processes only: a private redis-server with ``--appendonly yes --appendfsync always``, a
real ``nbi serve --store redis`` on a free port; both are SIGKILLed, Redis restarts from its
AOF and every event id the API returned must be there, intact.
"""

from __future__ import annotations

import os
import signal

import pytest

from bandit.control import Group
from service.store.redis_store import RedisStore
from tests.helpers.redis_server import RedisServer
from tests.helpers.service_process import call, recommendation_body, service_env, start_api

pytestmark = pytest.mark.integration
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
