"""API replicas pick up the learner's snapshots: the ModelWatcher swaps the serving policy
while requests keep running, never serves an older version after a newer one, and ignores an
unreadable snapshot."""

from __future__ import annotations

import threading
import time

import pytest

from bandit.catalog import default_catalog
from bandit.policies import make_policy
from bandit.types import Action
from service.model_watcher import ModelWatcher, PolicyRef
from service.store.base import ModelSnapshot
from service.store.redis_store import RedisStore
from tests.helpers.redis_server import RedisServer, redis_server_fixture

redis_server = redis_server_fixture(scope="module")
ACTIONS = [default_catalog()[i].as_action() for i in range(0, 300, 10)]


@pytest.fixture
def store(redis_server: RedisServer):
    redis_server.flush()
    s = RedisStore(redis_server.url, prefix="H:")
    yield s
    s.close()


def publish(store: RedisStore, n_updates: int) -> str:
    """Publish a uniform policy that has learned ``n_updates`` rewards."""
    policy = make_policy("uniform", seed=5)
    for i in range(n_updates):
        decision = policy.choose({"age": 30}, ACTIONS, event_id=f"e{i}")
        policy.learn(decision, 1.0)
    store.save_model(ModelSnapshot(policy.model_version, policy.to_bytes(), time.time()))
    return policy.model_version


def test_swaps_under_load_without_errors_or_going_back(store):
    initial = make_policy("uniform", seed=5)
    ref = PolicyRef(initial)
    watcher = ModelWatcher(
        store, ref.swap_from_snapshot, poll_seconds=0.01, current_version=ref.version
    )
    stop = threading.Event()
    seen: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def serve(k: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                decision = ref.get().choose({"age": 30}, ACTIONS, event_id=f"req-{k}-{i}")
                seen[k].append(decision.model_version)
            except BaseException as exc:  # noqa: BLE001 (any failure is a dropped request)
                errors.append(exc)
            i += 1

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(4)]
    watcher.start()
    for t in threads:
        t.start()
    published = [initial.model_version]
    try:
        for n in (1, 2, 3):
            published.append(publish(store, n))
            deadline = time.monotonic() + 5
            while ref.version != published[-1] and time.monotonic() < deadline:
                time.sleep(0.005)
            assert ref.version == published[-1]
            time.sleep(0.05)  # let requests run on the new model
    finally:
        stop.set()
        for t in threads:
            t.join()
        watcher.stop()
    assert not errors
    assert watcher.swaps == 3
    order = {v: i for i, v in enumerate(published)}
    for versions in seen:
        assert versions and set(versions) <= set(published)
        ranks = [order[v] for v in versions]
        assert ranks == sorted(ranks)  # never an older model after a newer one
    assert any(published[-1] in versions for versions in seen)


def test_unreadable_snapshot_is_ignored_and_the_current_policy_keeps_serving(store):
    ref = PolicyRef(make_policy("uniform"))
    before = ref.get()
    watcher = ModelWatcher(store, ref.swap_from_snapshot, current_version=ref.version)
    assert watcher.check_once() is False  # nothing published yet
    store.save_model(ModelSnapshot("broken-1", b"not a snapshot", time.time()))
    assert watcher.check_once() is False
    assert ref.get() is before and watcher.swaps == 0
    version = publish(store, 2)
    assert watcher.check_once() is True and ref.version == version
    assert ref.get().n_updates == 2
    assert watcher.check_once() is False  # same version: no reload
    assert isinstance(ACTIONS[0], Action)
