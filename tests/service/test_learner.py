"""The learner worker against a real private redis-server: learning, skipping, dead letters,
snapshots and a crash/restart that neither loses nor double-learns an event."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from bandit.catalog import default_catalog
from bandit.control import Group
from bandit.policies import make_policy, policy_from_bytes
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus
from service.learner import Learner, LearnerConfig, decision_from_record, skip_reason
from service.metrics import ServiceMetrics
from service.store.base import DecisionStore, ModelSnapshot
from service.store.redis_store import RedisStore
from tests.helpers.redis_server import RedisServer, redis_server_fixture

redis_server = redis_server_fixture(scope="module")
CATALOG = default_catalog()
HORIZON = 1e9


def add_event(
    store: DecisionStore,
    *,
    group: Group = Group.TREATMENT,
    complied: bool = True,
    censored: bool = False,
    action: str | None = None,
) -> str:
    event_id = uuid.uuid4().hex
    eligible = tuple(CATALOG[i].id for i in (0, 10, 20))
    if action is not None:
        eligible = (*eligible[:2], action)
    treatment = group is Group.TREATMENT
    record = DecisionRecord(
        event_id=event_id,
        timestamp=1.7e9,
        citizen_key="p_" + "cd" * 32,
        group=group,
        context={"age": 40, "target_group": "dagpenge"},
        eligible=eligible if treatment else (),
        pmf=(0.5, 0.3, 0.2) if treatment else (),
        recommended=(action or eligible[1]) if treatment else None,
        propensity=0.3 if treatment else None,
        model_version="m0",
        policy="uniform",
    )
    store.put_decision(record, horizon_seconds=HORIZON)
    if treatment:
        assigned = record.recommended if complied else eligible[0]
        assert assigned is not None
        store.record_assignment(event_id, assigned, None if complied else "capacity")
    if censored:
        store.record_outcome(
            event_id, Outcome(OutcomeStatus.DROPOUT, weeks_observed=3.0), None, censored=True
        )
    else:
        store.record_outcome(event_id, Outcome(OutcomeStatus.EMPLOYED, 4.0), 1.0, censored=False)
    return event_id


@pytest.fixture
def store(redis_server: RedisServer):
    redis_server.flush()
    s = RedisStore(redis_server.url, prefix="L:", claim_idle_ms=60_000)
    yield s
    s.close()


def make_learner(store: DecisionStore, **config) -> Learner:
    cfg = LearnerConfig(**{"block_ms": 0, "lease_ms": 300, **config})
    return Learner(store, CATALOG, lambda: make_policy("uniform", seed=1), cfg)


def test_learns_complied_treatment_skips_the_rest_and_dead_letters_poison(store):
    learnable = {add_event(store) for _ in range(5)}
    add_event(store, group=Group.CONTROL)
    add_event(store, complied=False)
    add_event(store, censored=True)  # censored: never published to the queue
    poison = add_event(store, action="NOT_IN_CATALOG")
    metrics = ServiceMetrics()
    learned: list[str] = []
    learner = make_learner(store, snapshot_every=100, retry_backoff_seconds=0.0)
    learner.metrics = metrics
    learner.on_learned = learned.append
    stats = learner.run(threading.Event(), max_idle_steps=1)
    assert set(learned) == learnable and len(learned) == 5
    assert (stats.learned, stats.skipped, stats.dead_lettered, stats.snapshots) == (5, 2, 1, 1)
    assert store.learning_lag() == 0
    dead = store.learning.dead_letters()
    assert [d["event_id"] for d in dead] == [poison] and "NOT_IN_CATALOG" in dead[0]["error"]
    snapshot = store.latest_model()
    assert snapshot is not None and policy_from_bytes(snapshot.data).n_updates == 5
    assert metrics.registry.get_sample_value("nbi_learner_updates_total") == 5
    assert metrics.registry.get_sample_value("nbi_learner_dead_letters_total") == 1
    assert (
        metrics.registry.get_sample_value("nbi_learner_skipped_total", {"reason": "control"}) == 1
    )


def test_messages_stay_unacked_until_their_snapshot_is_published(store):
    for _ in range(3):
        add_event(store)
    learner = make_learner(store, snapshot_every=10, snapshot_seconds=3600)
    assert learner.step() == 3
    assert store.learning_lag() == 3 and store.latest_model() is None
    snapshot = learner.commit()
    assert snapshot is not None and store.latest_model() == snapshot
    assert store.learning_lag() == 0


@pytest.mark.parametrize("slow_worker", [False, True], ids=["fast", "slow"])
def test_crash_and_restart_neither_loses_nor_double_learns(store_factory, slow_worker):
    """Both backends (conftest's ``store_factory``: SQLite file and private Redis, claim idle
    0.2 s). A slow worker A pauses past the claim-idle time, so it is handed its own
    unpublished messages again (they must not be learned twice); then A crashes and worker B
    restarts under the same consumer name from A's last snapshot."""
    store = store_factory()
    learnable = [add_event(store) for _ in range(40)]
    for _ in range(6):
        add_event(store, complied=False)

    committed_a: list[str] = []
    learned_a: list[str] = []
    a = make_learner(store, snapshot_every=10, batch_size=7, snapshot_seconds=3600)
    a.on_learned = learned_a.append
    a.on_commit = lambda snap, ids: committed_a.extend(ids)
    for _ in range(100):
        if len(learned_a) >= 25 and len(learned_a) > len(committed_a):
            break
        a.step()
        if slow_worker:
            time.sleep(0.25)  # > claim idle: A's own pending messages become claimable
    else:
        pytest.fail("worker A made no progress")
    assert (a.stats.redelivered > 0) == slow_worker  # the slow case really met re-delivery
    assert len(learned_a) == len(set(learned_a))  # A never learned one twice
    # Crash: worker A vanishes with learned-but-unpublished updates (no commit, no ack).
    uncommitted_a = [e for e in learned_a if e not in set(committed_a)]
    assert committed_a and uncommitted_a
    del a

    store_b = store_factory()  # the restarted process: a new connection, same consumer name
    learned_b: list[str] = []
    b = make_learner(store_b, snapshot_every=10, batch_size=7)
    b.on_learned = learned_b.append
    b.load()
    assert b.policy is not None and b.policy.n_updates == len(committed_a)
    b.run(threading.Event(), max_idle_steps=1)

    effective = committed_a + learned_b
    assert len(effective) == len(set(effective)) == len(learnable)  # nothing twice
    assert set(effective) == set(learnable)  # nothing lost
    assert set(uncommitted_a) <= set(learned_b)  # the lost in-memory work was redone
    final = store_b.latest_model()
    assert final is not None and policy_from_bytes(final.data).n_updates == len(learnable)
    assert store_b.learning_lag() == 0


def test_redelivered_too_often_goes_to_dead_letters_unread(store):
    event_id = add_event(store)
    learner = make_learner(store, max_deliveries=1)
    (message,) = store.read_learning("other", 1)
    store.learning.claim_idle_ms = 0
    learner.step()  # claims it from "other": second delivery > max_deliveries
    assert learner.stats.dead_lettered == 1 and learner.stats.learned == 0
    assert store.learning.dead_letters()[0]["event_id"] == event_id == message.event_id


def test_decision_rebuilt_from_record_matches_the_logged_pmf(store):
    event_id = add_event(store)
    record = store.get_decision(event_id)
    decision = decision_from_record(record, CATALOG)
    assert decision.action_ids == record.eligible and decision.pmf == record.pmf
    assert decision.chosen_action.id == record.recommended
    assert decision.propensity == record.propensity
    assert skip_reason(record) is None
    snap = ModelSnapshot("v", make_policy("uniform").to_bytes(), 0.0)
    assert policy_from_bytes(snap.data).name == "uniform"


def test_vw_snapshot_round_trips_through_redis_bytes_exactly(store):
    """A binary VW model published by the learner is what an API replica loads back."""
    for _ in range(12):
        add_event(store)
    learner = Learner(
        store,
        CATALOG,
        lambda: make_policy("vw", seed=3),
        LearnerConfig(block_ms=0, snapshot_every=100),
    )
    learner.run(threading.Event(), max_idle_steps=1)
    assert learner.policy is not None and learner.policy.n_updates == 12
    snapshot = store.latest_model()
    assert snapshot is not None and snapshot.data == learner.policy.to_bytes()
    loaded = policy_from_bytes(snapshot.data)
    actions = [CATALOG[i].as_action() for i in (0, 10, 20)]
    context = {"age": 40, "target_group": "dagpenge"}
    assert loaded.model_version == snapshot.version == learner.policy.model_version
    assert loaded.probabilities(context, actions).tolist() == pytest.approx(
        learner.policy.probabilities(context, actions).tolist(), abs=1e-9
    )


def test_second_learner_is_a_hot_standby_until_the_lease_holder_stops(store):
    """Two workers never both learn: the second waits, then takes over from the snapshot."""
    for _ in range(10):
        add_event(store)
    a = make_learner(store, consumer="a", lease_ms=5_000)
    b = make_learner(store, consumer="b", lease_ms=5_000)
    assert a.step() == 10 and a.stats.learned == 10
    assert b.step() == 0 and b.stats.standby_steps == 1 and b.policy is None
    a.run(threading.Event(), max_idle_steps=1)  # graceful stop: publish, release the lease
    for _ in range(5):
        add_event(store)
    b.run(threading.Event(), max_idle_steps=1)
    assert (a.stats.learned, b.stats.learned) == (10, 5)
    final = store.latest_model()
    assert final is not None and policy_from_bytes(final.data).n_updates == 15
    assert store.learning_lag() == 0
