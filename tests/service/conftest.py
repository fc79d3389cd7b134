"""Fixtures of the service tests: a ``store`` over both backends, settings and an app client.

The ``store`` fixture is parametrised over ``"sqlite"`` (a real file in ``tmp_path``) and
``"redis"`` (a private redis-server from ``tests.helpers.redis_server``). If that helper cannot
be imported, the redis case fails with an error; it is never skipped.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.store.base import DecisionStore
from service.store.sqlite_store import SQLiteStore
from tests.helpers.stores import CLAIM_IDLE_SECONDS, StoreFactory


def _redis_helper() -> Any:
    try:
        return importlib.import_module("tests.helpers.redis_server")
    except ImportError as exc:  # reported as an error, never a skip
        pytest.fail(f"tests.helpers.redis_server is not importable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def contract_redis_server() -> Iterator[Any]:
    """A private redis-server for the whole session (started only when a test needs it)."""
    server = _redis_helper().RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Make store instances over ONE backend (several instances = several processes/replicas)."""
    made: list[DecisionStore] = []
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        def make() -> DecisionStore:
            made.append(SQLiteStore(path, claim_idle_seconds=CLAIM_IDLE_SECONDS))
            return made[-1]

    else:
        server = request.getfixturevalue("contract_redis_server")
        from service.store.redis_store import RedisStore

        prefix = f"c{uuid.uuid4().hex[:8]}:"

        def make() -> DecisionStore:
            made.append(
                RedisStore(server.url, prefix=prefix, claim_idle_ms=int(CLAIM_IDLE_SECONDS * 1000))
            )
            return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> DecisionStore:
    """One store instance of the parametrised backend."""
    return store_factory()


# ---------------------------------------------------------------------------- app fixtures


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    """Dev settings with a private SQLite file.

    ``learning="worker"``: no learner thread in the app, so the store changes only through the
    requests of the test (the in-process learner is tested with ``inprocess_settings``).
    """
    from service.config import Settings

    return Settings(
        sqlite_path=tmp_path / "nbi.sqlite3",
        policy="vw",
        learning="worker",
        model_poll_seconds=3600.0,  # reloads happen only when a test asks for them
        snapshot_every=1,
        sweep_interval_seconds=3600.0,
        # These tests are about decisions and learning, not about the approval gate: every
        # snapshot is approved at once (as before the lifecycle). The gate itself, shadow
        # mode and the kill switch are tested in test_model_lifecycle.py with "manual".
        model_approval="auto",
    )


@pytest.fixture
def inprocess_settings(settings: Any) -> Any:
    """``settings`` with in-process learning and a snapshot after every update."""
    return settings.model_copy(update={"learning": "inprocess"})


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    """A TestClient over the real app; the lifespan runs (store, policy, threads)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c
