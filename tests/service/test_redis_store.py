"""Redis-specific behaviour of the Redis store (the shared contract is in test_store_contract).

Runs against a private redis-server (``KEYS`` disabled) started by tests.helpers.redis_server.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from bandit.context import ProtectedAttributes
from bandit.control import Group
from bandit.errors import ConflictError, UnknownEventError
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus
from service.redis.keys import LEARNING_GROUP, RedisKeys
from service.redis.streams import ensure_group
from service.store.base import ModelSnapshot
from service.store.redis_store import RedisStore
from tests.helpers.redis_server import RedisServer, redis_server_fixture

redis_server = redis_server_fixture(scope="module")

HORIZON = 26 * 7 * 86400.0


def make_record(event_id: str | None = None, *, group: Group = Group.TREATMENT) -> DecisionRecord:
    treatment = group is Group.TREATMENT
    return DecisionRecord(
        event_id=event_id or uuid.uuid4().hex,
        timestamp=1_700_000_000.0,
        citizen_key="p_" + "ab" * 32,
        group=group,
        context={"age": 35, "target_group": "dagpenge"},
        eligible=("A", "B", "C") if treatment else (),
        pmf=(0.5, 0.25, 0.25) if treatment else (),
        recommended="A" if treatment else None,
        propensity=0.5 if treatment else None,
        model_version="uniform-x-0",
        policy="uniform",
    )


@pytest.fixture
def store(redis_server: RedisServer):
    redis_server.flush()
    s = RedisStore(redis_server.url, prefix="t:", claim_idle_ms=200)
    yield s
    s.close()


def test_keys_share_the_prefix_and_no_keys_command_is_used(store: RedisStore, redis_server):
    store.put_decision(make_record("e1"), horizon_seconds=HORIZON)
    store.record_outcome("e1", Outcome(OutcomeStatus.EMPLOYED, 3.0), 1.0, censored=False)
    list(store.iter_records())
    store.expired_pending(time.time() + 10 * HORIZON)
    # KEYS is renamed away on the private server: the calls above would have failed with it.
    with pytest.raises(redis.exceptions.ResponseError):
        redis_server.client().execute_command("KEYS", "*")
    names = {k.decode() for k in redis_server.client().scan_iter("*")}
    assert names and all(n.startswith("t:") for n in names)
    assert RedisKeys("t:").record("e1") in names


def test_concurrent_requests_with_one_request_id_store_one_record(store: RedisStore):
    results = []

    def worker(i: int) -> None:
        rec = make_record(f"ev-{i}")
        results.append(store.put_decision(rec, request_id="same-req", horizon_seconds=HORIZON))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.changed]
    assert len(winners) == 1
    assert {r.record.event_id for r in results} == {winners[0].record.event_id}
    assert [r.event_id for r in store.iter_records()] == [winners[0].record.event_id]
    assert store.group_counts()["treatment"].decisions == 1


def test_concurrent_outcomes_settle_once_and_publish_once(store: RedisStore):
    store.put_decision(make_record("e1"), horizon_seconds=HORIZON)
    outcome = Outcome(OutcomeStatus.EMPLOYED, 5.0)
    results = []

    def worker() -> None:
        results.append(store.record_outcome("e1", outcome, 1.0, censored=False))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.changed for r in results) == 1
    assert store.learning_lag() == 1
    counts = store.group_counts()["treatment"]
    assert (counts.settled, counts.employed, counts.censored) == (1, 1, 0)
    assert store.pending_count() == 0


def test_conflicting_outcome_and_same_event_id_with_other_content(store: RedisStore):
    store.put_decision(make_record("e1"), horizon_seconds=HORIZON)
    store.record_outcome("e1", Outcome(OutcomeStatus.EMPLOYED, 5.0), 1.0, censored=False)
    with pytest.raises(ConflictError):
        store.record_outcome(
            "e1", Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON), 0.0, censored=False
        )
    other = make_record("e1", group=Group.CONTROL)
    with pytest.raises(ConflictError):
        store.put_decision(other, horizon_seconds=HORIZON)
    with pytest.raises(UnknownEventError):
        store.record_assignment("nope", "A", None)


def test_protected_attributes_live_apart_from_the_record(store: RedisStore, redis_server):
    prot = ProtectedAttributes.from_mapping({"gender": "female"})
    store.put_decision(make_record("e1"), protected=prot, horizon_seconds=HORIZON)
    raw = redis_server.client().hget("t:rec:e1", "json")
    assert b"female" not in raw and b"gender" not in raw
    assert store.get_protected("e1") == prot


def test_idle_messages_are_redelivered_with_counts_then_dead_lettered(store: RedisStore):
    store.put_decision(make_record("e1"), horizon_seconds=HORIZON)
    store.record_outcome("e1", Outcome(OutcomeStatus.EMPLOYED, 1.0), 1.0, censored=False)
    first = store.read_learning("worker-a", 10)
    assert [(m.event_id, m.deliveries) for m in first] == [("e1", 1)]
    assert store.read_learning("worker-b", 10) == []  # not idle yet
    time.sleep(0.3)  # > claim_idle_ms=200: worker-a is considered dead
    second = store.read_learning("worker-b", 10)
    assert [(m.message_id, m.deliveries) for m in second] == [(first[0].message_id, 2)]
    store.dead_letter(second[0], "boom")
    assert store.learning_lag() == 0
    dead = store.learning.dead_letters()
    assert dead[0]["event_id"] == "e1" and dead[0]["error"] == "boom"
    time.sleep(0.3)
    assert store.read_learning("worker-c", 10) == []


def test_restarted_consumer_gets_its_own_unacked_history_first(store: RedisStore, redis_server):
    for i in range(3):
        store.put_decision(make_record(f"e{i}"), horizon_seconds=HORIZON)
        store.record_outcome(f"e{i}", Outcome(OutcomeStatus.EMPLOYED, 1.0), 1.0, censored=False)
    got = store.read_learning("w", 2)
    store.ack_learning(got[0].message_id)
    # a new store instance = the restarted process with the same consumer name
    again = RedisStore(redis_server.url, prefix="t:", claim_idle_ms=60_000)
    redelivered = again.read_learning("w", 10)
    assert [m.event_id for m in redelivered] == ["e1", "e2"]
    assert redelivered[0].deliveries == 2 and redelivered[1].deliveries == 1
    again.close()


def test_group_creation_tolerates_only_busygroup(store: RedisStore, redis_server):
    client = redis_server.client()
    assert ensure_group(client, "t:learn") is True
    assert ensure_group(client, "t:learn") is False
    client.set("t:not-a-stream", "x")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE|key"):
        ensure_group(client, "t:not-a-stream", LEARNING_GROUP)


def test_model_snapshots_keep_a_bounded_history(store: RedisStore, redis_server):
    assert store.latest_model() is None
    store.keep_models = 3
    for i in range(5):
        store.save_model(ModelSnapshot(f"v{i}", bytes([i, 0, 255]) * 10, 1000.0 + i))
    latest = store.latest_model()
    assert latest == ModelSnapshot("v4", bytes([4, 0, 255]) * 10, 1004.0)
    assert store.latest_model_version() == "v4"
    c = redis_server.client()
    assert c.zcard("t:models") == 3 and not c.exists("t:model:v0") and c.exists("t:model:v2")


def test_commands_are_retried_across_a_redis_restart(tmp_path):
    server = RedisServer(tmp_path, appendonly=True).start()
    try:
        store = RedisStore(server.url, prefix="r:")
        store.put_decision(make_record("e1"), horizon_seconds=HORIZON)
        server.kill()
        restarter = threading.Timer(0.5, server.start)
        restarter.start()
        # The first attempts fail with ConnectionError; backoff retries until Redis is back.
        store.put_decision(make_record("e2"), horizon_seconds=HORIZON)
        restarter.join()
        assert [r.event_id for r in store.iter_records()] == ["e1", "e2"]
        store.close()
    finally:
        server.stop()


def test_single_writer_lease_is_exclusive_renewable_and_expires(store: RedisStore):
    assert store.acquire_lease("learner", "w1", 200) is True
    assert store.acquire_lease("learner", "w2", 200) is False
    assert store.acquire_lease("learner", "w1", 200) is True  # renewal by the holder
    store.release_lease("learner", "w2")  # not the holder: no effect
    assert store.acquire_lease("learner", "w2", 200) is False
    time.sleep(0.3)  # expired: a crashed holder does not block the others forever
    assert store.acquire_lease("learner", "w2", 10_000) is True
    store.release_lease("learner", "w2")
    assert store.acquire_lease("learner", "w1", 200) is True
