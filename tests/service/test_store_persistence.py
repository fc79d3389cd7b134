"""The service checks that its store is durable (Redis AOF with appendfsync always): a gauge
and the readiness check, at start-up; in prod a store that is not durable is not ready."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings, hash_api_key
from service.persistence import durability
from service.store.redis_store import RedisStore
from tests.helpers.redis_server import RedisServer

STRONG = "a-strong-secret-of-32-characters!"
METRICS = {"Authorization": f"Bearer {STRONG}m"}


class _NoConfigRedis(RedisServer):
    """A server with CONFIG disabled, as managed Redis services have it."""

    def command(self) -> list[str]:
        return [*super().command(), "--rename-command", "CONFIG", ""]


@pytest.fixture(scope="module")
def servers() -> dict[str, RedisServer]:
    started = {
        "aof": RedisServer(appendonly=True).start(),
        "no_aof": RedisServer(appendonly=False).start(),
        "no_config": _NoConfigRedis(appendonly=True).start(),
    }
    yield started
    for server in started.values():
        server.stop()


def _store(server: RedisServer) -> RedisStore:
    return RedisStore(server.url, prefix=f"p{uuid.uuid4().hex[:6]}:")


def test_durability_follows_the_server_configuration(servers):
    store = _store(servers["aof"])
    assert durability(store).durable
    store.client.config_set("appendfsync", "everysec")
    try:
        found = durability(store)
        assert not found.durable and "everysec" in found.detail
    finally:
        store.client.config_set("appendfsync", "always")
    off = durability(_store(servers["no_aof"]))
    assert not off.durable and "appendonly is off" in off.detail
    # CONFIG disabled: AOF is visible in INFO but the fsync policy is not: not proven durable
    unknown = durability(_store(servers["no_config"]))
    assert not unknown.durable and "unknown" in unknown.detail


def test_a_store_that_is_down_is_unknown_not_durable():
    store = RedisStore("redis://127.0.0.1:1/0", prefix="x:")
    assert durability(store) is None


def _prod_settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        environment="prod",
        pseudonym_key=STRONG,
        experiment_salt=STRONG,
        api_keys={"metrics": [hash_api_key(STRONG + "m")]},
        store="redis",
        redis_url=url,
        redis_prefix=f"p{uuid.uuid4().hex[:6]}:",
        policy="uniform",
        learning="worker",
        model_dir=tmp_path / "models",
        model_poll_seconds=3600.0,
        sweep_interval_seconds=3600.0,
    )


def _gauge(text: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith("nbi_store_durable "))
    return float(line.split()[1])


@pytest.mark.parametrize(("which", "durable"), [("aof", True), ("no_aof", False)])
def test_prod_readiness_and_the_gauge_report_persistence(servers, tmp_path, caplog, which, durable):
    settings = _prod_settings(tmp_path, servers[which].url)
    with (
        caplog.at_level("WARNING", logger="nbi.persistence"),
        TestClient(create_app(settings)) as client,
    ):
        ready = client.get("/readyz")
        metrics = client.get("/metrics", headers=METRICS)
    assert metrics.status_code == 200
    assert _gauge(metrics.text) == (1.0 if durable else 0.0)
    if durable:
        assert ready.status_code == 200 and ready.json()["checks"]["persistence"] is True
        assert not caplog.records
    else:
        assert ready.status_code == 503 and "persistence" in ready.json()["detail"]
        # checked at start-up, before any request
        assert any("not durable" in r.getMessage() for r in caplog.records)


def test_outside_prod_persistence_is_reported_but_does_not_fail_readiness(servers, tmp_path):
    settings = Settings(
        store="redis",
        redis_url=servers["no_aof"].url,
        redis_prefix=f"p{uuid.uuid4().hex[:6]}:",
        policy="uniform",
        learning="worker",
        model_dir=tmp_path / "models",
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["persistence"] is False
