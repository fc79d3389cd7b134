"""The fenced learner lease (issue 11.2) with real processes and real signals.

Two learner processes share one store. The lease holder learns a batch, is SIGSTOPped past its
lease, the standby takes over (claims the holder's pending messages, learns them and new ones,
publishes), then the old holder is SIGCONTed: it wakes up inside its step believing it still
holds the lease, its snapshot is due, and it tries to publish. Its fencing token is stale, so
the publish and the acknowledgements are refused in one atomic step (Redis: one Lua script;
SQLite: one transaction): it publishes nothing, acknowledges nothing, and its messages are
learned by the current holder. Afterwards the newest snapshot has exactly one update per
learnable outcome: none acknowledged-but-never-learned, none learned twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bandit.catalog import default_catalog
from bandit.control import Group
from bandit.policies import policy_from_bytes
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus
from service.store.base import DecisionStore
from service.store.redis_store import RedisStore
from service.store.sqlite_store import SQLiteStore
from tests.helpers.redis_server import RedisServer, redis_server_fixture

pytestmark = [pytest.mark.integration, pytest.mark.faults]
redis_server = redis_server_fixture(scope="module")
AnyStore = RedisStore | SQLiteStore
CATALOG = default_catalog()
LEASE_MS = 1500
CLAIM_IDLE_MS = 3000


def add_event(store: DecisionStore) -> str:
    """A followed treatment recommendation with an outcome: two learning messages, one update."""
    event_id = uuid.uuid4().hex
    eligible = tuple(CATALOG[i].id for i in (0, 10, 20))
    record = DecisionRecord(
        event_id=event_id,
        timestamp=1.7e9,
        citizen_key="p_" + "cd" * 32,
        group=Group.TREATMENT,
        context={"age": 40, "target_group": "dagpenge"},
        eligible=eligible,
        pmf=(0.5, 0.3, 0.2),
        recommended=eligible[1],
        propensity=0.3,
        model_version="m0",
        policy="uniform",
    )
    store.put_decision(record, horizon_seconds=1e9)
    store.record_assignment(event_id, eligible[1], None)
    store.record_outcome(event_id, Outcome(OutcomeStatus.EMPLOYED, 4.0), 1.0, censored=False)
    return event_id


class Worker:
    """One learner process and the JSON lines it printed."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.lines: list[dict[str, Any]] = []
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.learner_process", *args],
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def count(self, kind: str, after: float = 0.0) -> int:
        return sum(1 for line in list(self.lines) if line["e"] == kind and line["t"] > after)

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self._reader.join(timeout=5)
        stopped = [line for line in self.lines if line["e"] == "stopped"]
        assert stopped, self.log.read_text()
        return stopped[-1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def n_updates(store: DecisionStore) -> int:
    snapshot = store.latest_model()
    return -1 if snapshot is None else policy_from_bytes(snapshot.data).n_updates


@pytest.fixture(params=["redis", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[AnyStore, list[str]]]:
    """The producer's store and the worker options that reach the same store."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        store: AnyStore = RedisStore(server.url, prefix="F:", claim_idle_ms=CLAIM_IDLE_MS)
        options = ["--store", "redis", "--url", server.url, "--prefix", "F:"]
    else:
        path = tmp_path / "store.sqlite3"
        store = SQLiteStore(path, claim_idle_seconds=CLAIM_IDLE_MS / 1000)
        options = ["--store", "sqlite", "--url", str(path)]
    yield store, options
    store.close()


def test_a_paused_lease_holder_publishes_nothing_and_loses_nothing(
    backend: tuple[AnyStore, list[str]], tmp_path: Path
) -> None:
    store, options = backend
    common = [*options, "--lease-ms", str(LEASE_MS), "--claim-idle-ms", str(CLAIM_IDLE_MS)]
    events = [add_event(store) for _ in range(30)]
    # a: its snapshot is due 5 s after it loaded; it is stopped before that, woken after
    a = Worker([*common, "--consumer", "a", "--snapshot-seconds", "5"], tmp_path / "a.log")
    b: Worker | None = None
    try:
        wait_for(lambda: a.count("learned") == 30, 20, "a to learn the first 30 events")
        assert a.count("commit") == 0
        b = Worker([*common, "--consumer", "b", "--snapshot-seconds", "1"], tmp_path / "b.log")
        wait_for(lambda: b.count("started") == 1, 20, "b to start")
        a.proc.send_signal(signal.SIGSTOP)
        events += [add_event(store) for _ in range(20)]
        # b takes over when a's lease lapses, claims a's 30 pending messages once idle,
        # learns all 50 events and publishes
        wait_for(
            lambda: store.learning_lag() == 0 and n_updates(store) == 50,
            25,
            "b to take over and publish all 50 events",
        )
        assert b.count("lease") >= 1 and b.count("commit") >= 1
        # a's snapshot is due when it wakes (5 s after it took the lease)
        leased_at = next(line["t"] for line in a.lines if line["e"] == "lease")
        time.sleep(max(0.0, leased_at + 5.5 - time.time()))
        newest = store.latest_model_version()
        woken_at = time.time()
        a.proc.send_signal(signal.SIGCONT)
        time.sleep(2.0)  # a finishes its step, is refused, stands by
        # a published nothing and acknowledged nothing; the newest model is still b's
        assert a.count("commit", after=woken_at) == 0
        assert store.latest_model_version() == newest and n_updates(store) == 50
        a_exit = a.stop()
        # Stale either way: if a woke at its commit, the store refused the write (fenced
        # out); if it woke at its lease check, it saw the lease gone and dropped its updates
        # (which path depends on where SIGSTOP caught it: under load both happen). The
        # store's refusal of a stale token is checked deterministically below.
        log = a.log.read_text()
        assert a_exit["fenced_out"] >= 1 or "learner lease lost by a/" in log, log
        assert a_exit["snapshots"] == 0
        # the current holder goes on learning
        events += [add_event(store) for _ in range(10)]
        wait_for(lambda: store.learning_lag() == 0, 15, "b to learn the last 10 events")
        b.stop()
    finally:
        a.kill()
        if b is not None:
            b.kill()
    # one update per learnable outcome: 0 acknowledged-but-never-learned, 0 double-learned
    assert store.learning_lag() == 0
    assert n_updates(store) == len(events) == 60
    dead = store.learning.dead_letters() if isinstance(store, RedisStore) else store.dead_letters()
    assert dead == []


def test_a_stale_fencing_token_writes_nothing(backend: tuple[AnyStore, list[str]]) -> None:
    """The store-level step: a commit with a superseded token neither publishes nor acks."""
    from service.learner import FencedLease
    from service.store.base import ModelSnapshot

    store, _ = backend
    assert isinstance(store, FencedLease)  # both stores are fenced
    add_event(store)
    old = store.acquire_fenced_lease("learner", "a", 100)
    assert old > 0 and store.acquire_fenced_lease("learner", "b", 10_000) == 0
    assert store.acquire_fenced_lease("learner", "a", 100) == old  # renewal keeps the token
    time.sleep(0.2)  # a's holding lapses; b takes over with a larger token
    new = store.acquire_fenced_lease("learner", "b", 10_000)
    assert new > old
    ids = [m.message_id for m in store.read_learning("a", 10)]
    assert len(ids) == 2
    snapshot = ModelSnapshot("stale", b"x", time.time())
    assert store.commit_fenced("learner", old, snapshot, ids) is False
    assert store.commit_fenced("learner", old, None, ids[:1]) is False
    assert store.latest_model() is None and store.learning_lag() == 2
    assert store.commit_fenced("learner", new, snapshot, ids) is True
    assert store.latest_model_version() == "stale" and store.learning_lag() == 0


def test_finish_publishes_and_hands_the_lease_over_at_once(
    backend: tuple[AnyStore, list[str]],
) -> None:
    """A clean stop (``nbi learner`` on SIGTERM, the in-process learner on shutdown) releases
    the lease: a standby or the restarted process need not wait for it to lapse."""
    from bandit.policies import make_policy
    from service.learner import Learner, LearnerConfig

    store, _ = backend
    add_event(store)
    config = LearnerConfig(consumer="a", block_ms=0, lease_ms=60_000, delay_strategy="at_once")
    learner = Learner(store, CATALOG, lambda: make_policy("uniform", seed=1), config)
    learner.step()
    assert store.acquire_fenced_lease("learner", "b", 60_000) == 0
    learner.finish()
    assert n_updates(store) == 1 and store.learning_lag() == 0
    assert store.acquire_fenced_lease("learner", "b", 60_000) > 0
