"""The learner worker against a real private redis-server: learning, skipping, dead letters,
snapshots and a crash/restart that neither loses nor double-learns an event.

A followed recommendation puts two messages on the queue (its assignment and its outcome);
most tests learn whole outcomes at once (``delay_strategy="at_once"``); the default delay
strategies (``horizon`` for a reward learner, ``hazard`` for a hazard learner) are tested with
a controllable clock at the end."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from bandit.catalog import default_catalog
from bandit.control import Group
from bandit.errors import ModelConfigError
from bandit.feedback import WEEK_SECONDS
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
    outcome: Outcome | None = None,
    assign: bool = True,
    settle: bool = True,
    timestamp: float = 1.7e9,
) -> str:
    event_id = uuid.uuid4().hex
    eligible = tuple(CATALOG[i].id for i in (0, 10, 20))
    if action is not None:
        eligible = (*eligible[:2], action)
    treatment = group is Group.TREATMENT
    record = DecisionRecord(
        event_id=event_id,
        timestamp=timestamp,
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
    if treatment and assign:
        assigned = record.recommended if complied else eligible[0]
        assert assigned is not None
        store.record_assignment(event_id, assigned, None if complied else "capacity")
    if not settle:
        return event_id
    if outcome is not None:
        store.record_outcome(
            event_id,
            outcome,
            1.0 if outcome.status is OutcomeStatus.EMPLOYED else 0.0,
            censored=False,
        )
    elif censored:
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
    cfg = LearnerConfig(**{"block_ms": 0, "lease_ms": 300, "delay_strategy": "at_once", **config})
    return Learner(store, CATALOG, lambda: make_policy("uniform", seed=1), cfg)


def test_learns_complied_treatment_skips_the_rest_and_dead_letters_poison(store):
    learnable = {add_event(store) for _ in range(5)}
    add_event(store, group=Group.CONTROL)  # never published
    add_event(store, complied=False)  # never published
    censored = add_event(store, censored=True)  # published, learned, but has no reward
    unassigned = add_event(store, assign=False)  # outcome published, never assigned
    overridden_late = add_event(store, assign=False)  # outcome published, then overridden
    store.record_assignment(overridden_late, CATALOG[0].id, "capacity")
    poison = add_event(store, action="NOT_IN_CATALOG")
    assert store.learning_lag() == 2 * 5 + 2 + 1 + 1 + 2
    metrics = ServiceMetrics()
    learned: list[str] = []
    learner = make_learner(store, snapshot_every=100, retry_backoff_seconds=0.0)
    learner.metrics = metrics
    learner.on_learned = learned.append
    stats = learner.run(threading.Event(), max_idle_steps=1)
    # each followed event once, by whichever of its two messages came first
    assert sorted(learned) == sorted({*learnable, censored})
    # skipped: the other message of each learned event, the unassigned and the overridden
    assert (stats.learned, stats.skipped, stats.dead_lettered, stats.snapshots) == (6, 8, 2, 1)
    assert store.learning_lag() == 0
    dead = store.learning.dead_letters()
    assert [d["event_id"] for d in dead] == [poison, poison]
    assert all("NOT_IN_CATALOG" in d["error"] for d in dead)
    snapshot = store.latest_model()
    assert snapshot is not None and policy_from_bytes(snapshot.data).n_updates == 5
    assert policy_from_bytes(snapshot.data).learning_state["open"] == {}
    # model updates: the dropout has no reward for a reward learner
    assert metrics.registry.get_sample_value("nbi_learner_updates_total") == 5
    assert metrics.registry.get_sample_value("nbi_learner_dead_letters_total") == 2

    def skipped(reason: str) -> float | None:
        return metrics.registry.get_sample_value("nbi_learner_skipped_total", {"reason": reason})

    assert (skipped("unassigned"), skipped("not_complied"), skipped("already_learned")) == (1, 1, 6)
    assert not skipped("control")  # control records never reach the queue
    assert unassigned not in learned and overridden_late not in learned


def test_messages_stay_unacked_until_their_snapshot_is_published(store):
    for _ in range(3):
        add_event(store)  # two messages each: assignment and outcome
    learner = make_learner(store, snapshot_every=10, snapshot_seconds=3600)
    assert learner.step() == 6
    assert learner.policy is not None and learner.policy.n_updates == 3
    # each event's first message waits for the snapshot; the second, already learned, is
    # acknowledged at once like any message that teaches nothing
    assert store.learning_lag() == 3 and store.latest_model() is None
    assert learner.stats.skipped == 3
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
    learnable = [add_event(store) for _ in range(40)]  # 80 messages
    for _ in range(6):
        add_event(store, complied=False)  # not published

    committed_a: set[str] = set()
    learned_a: list[str] = []
    # snapshot_every counts messages and model updates: about every other batch of 7
    # lease 2 s: longer than A's pauses even on a loaded machine (a lapsed lease drops A's
    # unpublished updates, which A would then learn again: by design, but not this test)
    a = make_learner(store, snapshot_every=20, batch_size=7, snapshot_seconds=3600, lease_ms=2000)
    a.on_learned = learned_a.append
    a.on_commit = lambda snap, ids: committed_a.update(ids)

    def unpublished() -> list[str]:
        return [e for e in learned_a if e not in committed_a]

    for _ in range(100):
        if len(learned_a) >= 25 and unpublished():
            break
        a.step()
        if slow_worker:
            time.sleep(0.25)  # > claim idle: A's own pending messages become claimable
    else:
        pytest.fail("worker A made no progress")
    assert (a.stats.redelivered > 0) == slow_worker  # the slow case really met re-delivery
    assert len(learned_a) == len(set(learned_a))  # A never learned one twice
    # Crash: worker A vanishes with learned-but-unpublished updates (no commit, no ack).
    uncommitted_a = unpublished()
    published_a = [e for e in learned_a if e in committed_a]
    assert published_a and uncommitted_a
    del a

    store_b = store_factory()  # the restarted process: a new connection, same consumer name
    learned_b: list[str] = []
    b = make_learner(store_b, snapshot_every=10, batch_size=7)
    b.on_learned = learned_b.append
    b.load()
    assert b.policy is not None and b.policy.n_updates == len(published_a)
    b.run(threading.Event(), max_idle_steps=1)

    effective = published_a + learned_b
    assert len(effective) == len(set(effective)) == len(learnable)  # nothing twice
    assert set(effective) == set(learnable)  # nothing lost
    assert set(uncommitted_a) <= set(learned_b)  # the lost in-memory work was redone
    final = store_b.latest_model()
    assert final is not None and policy_from_bytes(final.data).n_updates == len(learnable)
    assert store_b.learning_lag() == 0


def test_redelivered_too_often_goes_to_dead_letters_unread(store):
    event_id = add_event(store)
    learner = make_learner(store, max_deliveries=1)
    messages = store.read_learning("other", 2)  # the assignment and the outcome
    assert [m.event_id for m in messages] == [event_id, event_id]
    store.learning.claim_idle_ms = 0
    learner.step()  # claims both from "other": second delivery > max_deliveries
    assert learner.stats.dead_lettered == 2 and learner.stats.learned == 0
    assert [d["event_id"] for d in store.learning.dead_letters()] == [event_id, event_id]
    assert store.learning_lag() == 0


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
        LearnerConfig(block_ms=0, snapshot_every=100, delay_strategy="at_once"),
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
    assert a.step() == 20 and a.stats.learned == 10  # two messages per event
    assert b.step() == 0 and b.stats.standby_steps == 1 and b.policy is None
    a.run(threading.Event(), max_idle_steps=1)  # graceful stop: publish, release the lease
    for _ in range(5):
        add_event(store)
    b.run(threading.Event(), max_idle_steps=1)
    assert (a.stats.learned, b.stats.learned) == (10, 5)
    final = store.latest_model()
    assert final is not None and policy_from_bytes(final.data).n_updates == 15
    assert store.learning_lag() == 0


# ---------------------------------------------------------------- default delay strategies

T0 = 1.7e9


def clocked_learner(store: DecisionStore, policy_factory, now: list[float], **config) -> Learner:
    """A learner with the default delay strategy whose clock reads ``now[0]``."""
    learner = Learner(store, CATALOG, policy_factory, LearnerConfig(block_ms=0, **config))
    learner.clock = lambda: now[0]
    return learner


def test_default_strategy_of_a_reward_learner_waits_for_the_horizon(store_factory):
    """``uniform`` is no hazard learner, so the default strategy runs ``horizon``: nothing is
    learned before decision + horizon + reporting lag, even though the outcomes are known; the
    open events (with their outcomes) survive a restart and are learned exactly once."""
    store = store_factory()
    ids = {add_event(store, timestamp=T0) for _ in range(3)}
    now = [T0 + 2 * WEEK_SECONDS]

    def learner() -> Learner:
        factory = lambda: make_policy("uniform", seed=1)  # noqa: E731
        return clocked_learner(store, factory, now, horizon_weeks=8, report_lag_weeks=1.0)

    a = learner()
    a.run(threading.Event(), max_idle_steps=1)
    assert a.feedback is not None and a.feedback.strategy.value == "horizon"
    assert a.stats.learned == 3 and a.policy is not None and a.policy.n_updates == 0
    assert store.learning_lag() == 0  # acknowledged: the snapshot holds the open events
    snapshot = store.latest_model()
    assert snapshot is not None
    stored = policy_from_bytes(snapshot.data)
    assert stored.n_updates == 0 and set(stored.learning_state["open"]) == ids
    now[0] = T0 + 8.5 * WEEK_SECONDS  # past the horizon, not yet past the reporting lag
    a.step()
    assert a.policy is not None and a.policy.n_updates == 0
    del a  # crash

    now[0] = T0 + 9 * WEEK_SECONDS
    b = learner()
    b.load()
    assert b.feedback is not None and b.feedback.open_count == 3
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy is not None and b.policy.n_updates == 3 and b.feedback.open_count == 0
    final = store.latest_model()
    assert final is not None
    assert policy_from_bytes(final.data).n_updates == 3
    assert policy_from_bytes(final.data).learning_state["open"] == {}

    now[0] = T0 + 52 * WEEK_SECONDS
    c = learner()
    c.run(threading.Event(), max_idle_steps=1)
    assert c.policy is not None and c.policy.n_updates == 3  # nothing learned twice


def test_hazard_learner_learns_citizen_weeks_as_time_passes_and_across_a_restart(store_factory):
    """The default strategy with a hazard learner (vw, target="hazard"): every week a
    followed citizen is known to be without a job is one update, the job week one more; a
    restart resumes from the snapshot's open events without learning a week twice, and an
    outcome is learned once whichever order its two messages come in."""
    store = store_factory()
    now = [T0 + 3.5 * WEEK_SECONDS]

    def learner() -> Learner:
        def factory():
            return make_policy(
                "vw", target="hazard", horizon_weeks=8, hazard_buckets=(0, 3), seed=13
            )

        return clocked_learner(store, factory, now, horizon_weeks=8)

    event = add_event(store, timestamp=T0, settle=False)  # followed, outcome not yet known
    a = learner()
    a.run(threading.Event(), max_idle_steps=1)
    assert a.feedback is not None and a.feedback.strategy.value == "hazard"
    assert a.policy is not None and a.policy.n_updates == 3  # weeks 0, 1, 2 without a job
    assert a.stats.learned == 1 and store.learning_lag() == 0
    snapshot = store.latest_model()
    assert snapshot is not None
    assert policy_from_bytes(snapshot.data).learning_state["open"][event][1] == 3
    del a  # crash

    now[0] = T0 + 5 * WEEK_SECONDS
    b = learner()
    b.load()
    assert b.policy is not None and b.policy.n_updates == 3
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy is not None and b.policy.n_updates == 5  # weeks 3 and 4, not 0..4 again

    now[0] = T0 + 7.5 * WEEK_SECONDS  # a job in week 6 is reported
    store.record_outcome(event, Outcome(OutcomeStatus.EMPLOYED, 6.2), 1.0, censored=False)
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy is not None and b.policy.n_updates == 7  # week 5 without, week 6 with
    assert b.feedback is not None and b.feedback.open_count == 0

    # both messages queued before the learner reads either (assignment, then outcome)
    now[0] = T0 + 10 * WEEK_SECONDS
    add_event(store, timestamp=T0, outcome=Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON))
    # the outcome stored before the assignment (its message comes first)
    late = add_event(store, timestamp=T0, assign=False, censored=True)  # dropout after 3 weeks
    store.record_assignment(late, store.get_decision(late).recommended or "", None)
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy is not None and b.policy.n_updates == 7 + 8 + 3  # each week once
    assert b.feedback is not None and b.feedback.open_count == 0
    assert store.learning_lag() == 0

    c = learner()
    c.run(threading.Event(), max_idle_steps=1)
    assert c.policy is not None and c.policy.n_updates == 18


def test_a_snapshot_learned_with_another_delay_strategy_is_refused_unless_restart(store):
    """Open events kept for one strategy mean something else under another (e.g. ``horizon``
    holds outcomes until their release), so a changed strategy is a changed model."""
    add_event(store, settle=False)  # an open event in the snapshot
    at_once = make_learner(store)
    at_once.run(threading.Event(), max_idle_steps=1)
    snapshot = store.latest_model()
    assert snapshot is not None
    assert policy_from_bytes(snapshot.data).learning_state["strategy"] == "at_once"
    horizon = make_learner(store, delay_strategy="horizon")
    with pytest.raises(ModelConfigError, match="delay_strategy: 'at_once' -> 'horizon'"):
        horizon.load()
    horizon.param_change = "restart"
    assert horizon.load().n_updates == 0 and horizon.feedback is not None
    assert horizon.feedback.open_count == 0  # a fresh model: the old open events are not used


def test_an_assignment_recorded_after_its_outcome_was_read_is_learned_once(store_factory):
    """Issue 11.5: the outcome arrives first and the learner reads (and skips) it while the
    event is unassigned; the followed assignment stored afterwards must still be learned."""
    store = store_factory()
    events = [add_event(store, assign=False) for _ in range(3)]
    learned: list[str] = []
    learner = make_learner(store, snapshot_every=100)
    learner.on_learned = learned.append
    learner.run(threading.Event(), max_idle_steps=1)
    assert learned == [] and store.learning_lag() == 0  # unassigned: skipped
    for event_id in events:
        store.record_assignment(event_id, store.get_decision(event_id).recommended or "", None)
    learner.run(threading.Event(), max_idle_steps=1)
    assert sorted(learned) == sorted(events)
    assert learner.policy is not None and learner.policy.n_updates == 3
    again = make_learner(store)
    again.run(threading.Event(), max_idle_steps=1)
    assert again.policy is not None and again.policy.n_updates == 3  # nothing twice


def _hazard_learner(store: DecisionStore, now: list[float]) -> Learner:
    def factory():
        return make_policy("vw", target="hazard", horizon_weeks=8, hazard_buckets=(0, 3), seed=5)

    return clocked_learner(store, factory, now, horizon_weeks=8, report_lag_weeks=2.0)


NOT_REPORTED = Outcome(OutcomeStatus.NOT_REPORTED)


def test_not_reported_is_provisional_and_a_late_report_before_it_is_final_is_learned(
    store_factory,
):
    """The sweep's ``not_reported`` (week 8 = H) is not learned as a final "no job": the hazard
    learner keeps the event open until H + lag (week 10). A real report of a job in week 6 at
    week 9 is learned (week 6 with a job, never week 6 or 7 without one), once, across a
    restart; a correction after H + lag is stored but not learned (it would learn the event
    twice)."""
    store = store_factory()
    now = [T0 + 8.5 * WEEK_SECONDS]
    early = add_event(store, timestamp=T0, settle=False)
    late = add_event(store, timestamp=T0, settle=False)
    for event_id in (early, late):
        store.record_outcome(event_id, NOT_REPORTED, 0.0, censored=False)  # the sweep
    a = _hazard_learner(store, now)
    a.run(threading.Event(), max_idle_steps=1)
    assert a.policy is not None and a.policy.n_updates == 2 * 6  # weeks 0-5 known, each
    assert a.feedback is not None and a.feedback.open_count == 2
    del a  # crash after the snapshot: the open events survive in it

    now[0] = T0 + 9 * WEEK_SECONDS
    store.record_outcome(early, Outcome(OutcomeStatus.EMPLOYED, 6.5), 1.0, censored=False)
    b = _hazard_learner(store, now)
    b.run(threading.Event(), max_idle_steps=1)
    # `early`: its job week 6, nothing after it; `late`: week 6 now known without a job
    assert b.policy is not None and b.policy.n_updates == 12 + 1 + 1
    assert b.feedback is not None and b.feedback.is_open(late) and not b.feedback.is_open(early)

    now[0] = T0 + 10.5 * WEEK_SECONDS  # H + lag passed: "not reported" final for `late`
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy.n_updates == 14 + 1  # `late`: week 7 without a job, then final
    assert b.feedback.open_count == 0
    metrics = ServiceMetrics()
    b.metrics = metrics
    store.record_outcome(late, Outcome(OutcomeStatus.EMPLOYED, 7.2), 1.0, censored=False)
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy.n_updates == 15  # stored as a correction, not learned twice
    assert (
        metrics.registry.get_sample_value(
            "nbi_learner_skipped_total", {"reason": "late_correction"}
        )
        == 1
    )
    assert store.learning_lag() == 0 and len(store.corrections()) == 2
    c = _hazard_learner(store, now)
    c.run(threading.Event(), max_idle_steps=1)
    assert c.policy is not None and c.policy.n_updates == 15


def test_a_reward_learner_learns_not_reported_as_zero_only_at_horizon_plus_lag(store_factory):
    """``horizon`` strategy: a correction before H + lag replaces the provisional label (one
    update, the real reward); an uncorrected ``not_reported`` becomes one update of 0."""
    store = store_factory()
    now = [T0 + 8.5 * WEEK_SECONDS]
    corrected = add_event(store, timestamp=T0, settle=False)
    uncorrected = add_event(store, timestamp=T0, settle=False)
    for event_id in (corrected, uncorrected):
        store.record_outcome(event_id, NOT_REPORTED, 0.0, censored=False)

    def learner() -> Learner:
        factory = lambda: make_policy("uniform", seed=1)  # noqa: E731
        return clocked_learner(store, factory, now, horizon_weeks=8, report_lag_weeks=2.0)

    a = learner()
    a.run(threading.Event(), max_idle_steps=1)
    assert a.policy is not None and a.policy.n_updates == 0
    store.record_outcome(corrected, Outcome(OutcomeStatus.EMPLOYED, 3.0), 1.0, censored=False)
    a.run(threading.Event(), max_idle_steps=1)
    assert a.policy.n_updates == 0 and a.feedback is not None and a.feedback.open_count == 2
    now[0] = T0 + 10.5 * WEEK_SECONDS
    a.run(threading.Event(), max_idle_steps=1)
    assert a.policy.n_updates == 2 and a.feedback.open_count == 0
    assert a.policy.learning_state["open"] == {}
    b = learner()
    b.run(threading.Event(), max_idle_steps=1)
    assert b.policy is not None and b.policy.n_updates == 2
