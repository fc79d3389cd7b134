"""The ONE contract suite every DecisionStore passes (real SQLite file, real redis-server)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import pytest

from bandit.context import ProtectedAttributes
from bandit.control import Group
from bandit.errors import ConflictError, UnknownEventError
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus
from service.store.base import DecisionStore, ModelSnapshot
from tests.helpers.stores import CLAIM_IDLE_SECONDS, StoreFactory

HORIZON = 26 * 7 * 86400.0
T0 = 1_700_000_000.0
EMPLOYED = Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=3.0)
DROPOUT = Outcome(OutcomeStatus.DROPOUT, weeks_observed=2.0)
NOT_EMPLOYED = Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON)


def record(
    event_id: str | None = None, *, group: Group = Group.TREATMENT, timestamp: float = T0
) -> DecisionRecord:
    treatment = group is Group.TREATMENT
    return DecisionRecord(
        event_id=event_id or uuid.uuid4().hex,
        timestamp=timestamp,
        citizen_key="p_" + uuid.uuid4().hex + uuid.uuid4().hex,
        group=group,
        context={"age": 35, "target_group": "dagpenge", "labour_demand_index": 1.25},
        eligible=("A", "B", "C") if treatment else ("A", "B", "C"),
        pmf=(0.5, 0.25, 0.25) if treatment else (),
        recommended="A" if treatment else None,
        propensity=0.5 if treatment else None,
        model_version="uniform-x-0",
        policy="uniform",
        experiment="nbi-rct:0.2:2026-01-01:abcd1234",
        excluded={"D": "too_early"},
    )


# ---------------------------------------------------------------------------- decisions


def test_put_then_get_round_trips_every_field(store: DecisionStore):
    rec = record("e1")
    result = store.put_decision(rec, horizon_seconds=HORIZON)
    assert result.changed and result.record == rec
    assert store.get_decision("e1") == rec
    assert store.ping()


def test_caseworker_and_jobcentre_pseudonyms_round_trip_through_every_write(
    store: DecisionStore,
):
    caseworker, jobcentre = "c_" + "a" * 64, "c_" + "b" * 64
    rec = dataclasses.replace(record("e1"), caseworker_key=caseworker, jobcentre_key=jobcentre)
    assert store.put_decision(rec, horizon_seconds=HORIZON).record == rec
    assert store.get_decision("e1") == rec
    assigned = store.record_assignment("e1", "B", "capacity").record
    settled = store.record_outcome("e1", EMPLOYED, 1.0, censored=False).record
    for stored in (assigned, settled, store.get_decision("e1"), *store.iter_records()):
        assert (stored.caseworker_key, stored.jobcentre_key) == (caseworker, jobcentre)
    assert store.get_decision("e1").complied is False


def test_a_record_written_before_the_pseudonym_fields_reads_with_none(store: DecisionStore):
    legacy = record("e1").to_dict()
    del legacy["caseworker_key"], legacy["jobcentre_key"]
    rec = DecisionRecord.from_dict(legacy)
    assert (rec.caseworker_key, rec.jobcentre_key) == (None, None)
    store.put_decision(rec, horizon_seconds=HORIZON)
    assert store.get_decision("e1") == rec


def test_replayed_request_id_stores_nothing_and_returns_the_first_record(store: DecisionStore):
    first = store.put_decision(record("e1"), request_id="req-1", horizon_seconds=HORIZON)
    again = store.put_decision(record("e2"), request_id="req-1", horizon_seconds=HORIZON)
    assert first.changed and not again.changed
    assert again.record.event_id == "e1"
    with pytest.raises(UnknownEventError):
        store.get_decision("e2")
    assert [r.event_id for r in store.iter_records()] == ["e1"]
    assert store.pending_count() == 1
    assert store.group_counts()["treatment"].decisions == 1


def test_a_request_id_replayed_with_another_body_conflicts_and_stores_nothing(
    store: DecisionStore,
):
    first = store.put_decision(
        record("e1"), request_id="req-1", horizon_seconds=HORIZON, request_fingerprint="f1"
    )
    retry = store.put_decision(
        record("e2"), request_id="req-1", horizon_seconds=HORIZON, request_fingerprint="f1"
    )
    assert first.changed and not retry.changed and retry.record.event_id == "e1"
    with pytest.raises(ConflictError, match="different request body"):
        store.put_decision(
            record("e3"), request_id="req-1", horizon_seconds=HORIZON, request_fingerprint="f2"
        )
    assert [r.event_id for r in store.iter_records()] == ["e1"]
    assert store.group_counts()["treatment"].decisions == 1


def test_request_ids_expire_after_the_idempotency_ttl(store: DecisionStore):
    store.idempotency_ttl_seconds = 1  # type: ignore[attr-defined]  (both stores have it)
    assert store.put_decision(record("e1"), request_id="req", horizon_seconds=HORIZON).changed
    assert not store.put_decision(record("e2"), request_id="req", horizon_seconds=HORIZON).changed
    time.sleep(1.3)
    again = store.put_decision(record("e3"), request_id="req", horizon_seconds=HORIZON)
    assert again.changed and again.record.event_id == "e3"  # a new decision, not a replay
    assert [r.event_id for r in store.iter_records()] == ["e1", "e3"]


def test_same_event_id_twice_is_a_noop_and_different_content_conflicts(store: DecisionStore):
    rec = record("e1")
    store.put_decision(rec, horizon_seconds=HORIZON)
    assert not store.put_decision(rec, horizon_seconds=HORIZON).changed
    other = record("e1", timestamp=T0 + 5)
    with pytest.raises(ConflictError):
        store.put_decision(other, horizon_seconds=HORIZON)
    assert store.get_decision("e1") == rec
    assert store.group_counts()["treatment"].decisions == 1


def test_unknown_event_ids_raise_unknown_event_error(store: DecisionStore):
    with pytest.raises(UnknownEventError):
        store.get_decision("nope")
    with pytest.raises(UnknownEventError):
        store.get_protected("nope")
    with pytest.raises(UnknownEventError):
        store.record_assignment("nope", "A", None)
    with pytest.raises(UnknownEventError):
        store.record_outcome("nope", EMPLOYED, 1.0, censored=False)
    assert list(store.iter_records()) == []


def test_protected_attributes_are_stored_apart_from_the_record(store: DecisionStore):
    attrs = ProtectedAttributes(gender="female", origin="non_western")
    store.put_decision(record("e1"), protected=attrs, horizon_seconds=HORIZON)
    store.put_decision(record("e2"), horizon_seconds=HORIZON)
    assert store.get_protected("e1") == attrs
    assert store.get_protected("e2") is None
    text = str(store.get_decision("e1").to_dict())
    assert "female" not in text and "non_western" not in text


def test_assignment_is_stored_once_replay_is_noop_and_change_conflicts(store: DecisionStore):
    store.put_decision(record("e1"), horizon_seconds=HORIZON)
    first = store.record_assignment("e1", "B", "citizen_preference")
    assert first.changed and first.record.assigned == "B"
    assert first.record.assignment_reason == "citizen_preference"
    assert first.record.complied is False
    assert not store.record_assignment("e1", "B", "citizen_preference").changed
    with pytest.raises(ConflictError):
        store.record_assignment("e1", "C", "capacity")
    assert store.get_decision("e1").assigned == "B"


def test_outcome_settles_once_replay_is_noop_and_change_conflicts(store: DecisionStore):
    store.put_decision(record("e1"), horizon_seconds=HORIZON)
    store.put_decision(record("e2"), horizon_seconds=HORIZON)
    assert store.pending_count() == 2
    first = store.record_outcome("e1", EMPLOYED, 1.0, censored=False)
    assert first.changed and first.record.reward == 1.0 and first.record.outcome == EMPLOYED
    assert store.pending_count() == 1
    replay = store.record_outcome("e1", EMPLOYED, 1.0, censored=False)
    assert not replay.changed and replay.record == first.record
    with pytest.raises(ConflictError):
        store.record_outcome("e1", NOT_EMPLOYED, 0.0, censored=False)
    assert store.get_decision("e1") == first.record
    assert store.pending_count() == 1
    assert store.learning_lag() == 1


NOT_REPORTED = Outcome(OutcomeStatus.NOT_REPORTED)


def test_a_late_report_replaces_not_reported_as_an_audited_correction(store: DecisionStore):
    """The sweep's ``not_reported`` is provisional: a real report replaces it once (counters
    corrected, an audit entry, a ``correction`` message); then the outcome is final."""
    store.put_decision(record("e1"), horizon_seconds=HORIZON)
    store.record_assignment("e1", "A", None)
    swept = store.record_outcome("e1", NOT_REPORTED, 0.0, censored=False)
    assert swept.changed and store.pending_count() == 0
    assert store.corrections() == []
    counts = store.group_counts()["treatment"]
    assert (counts.settled, counts.employed, counts.censored) == (1, 0, 0)
    late = store.record_outcome("e1", EMPLOYED, 1.0, censored=False)
    assert late.changed and late.record.outcome == EMPLOYED and late.record.reward == 1.0
    counts = store.group_counts()["treatment"]
    assert (counts.settled, counts.employed, counts.censored) == (1, 1, 0)
    [entry] = store.corrections()
    assert (entry["event_id"], entry["previous"], entry["new"]) == (
        "e1",
        "not_reported",
        "employed",
    )
    assert float(entry["at"]) == pytest.approx(time.time(), abs=60)
    assert not store.record_outcome("e1", EMPLOYED, 1.0, censored=False).changed
    with pytest.raises(ConflictError):
        store.record_outcome("e1", DROPOUT, None, censored=True)
    with pytest.raises(ConflictError):  # the sweep never overwrites a report
        store.record_outcome("e1", NOT_REPORTED, 0.0, censored=False)
    messages = store.read_learning("contract-reader", 100)
    assert [(m.event_id, m.kind) for m in messages] == [
        ("e1", "assignment"),
        ("e1", "outcome"),
        ("e1", "correction"),
    ]
    # a censored correction counts as censored, not as employed
    store.put_decision(record("e2"), horizon_seconds=HORIZON)
    store.record_outcome("e2", NOT_REPORTED, 0.0, censored=False)
    store.record_outcome("e2", DROPOUT, None, censored=True)
    counts = store.group_counts()["treatment"]
    assert (counts.settled, counts.employed, counts.censored) == (2, 1, 1)
    assert [c["event_id"] for c in store.corrections()] == ["e1", "e2"]


def _queued_event_ids(store: DecisionStore) -> list[str]:
    return [m.event_id for m in store.read_learning("contract-reader", 100)]


def test_censored_outcomes_of_followed_recommendations_are_published_control_ones_not(
    store: DecisionStore,
):
    store.put_decision(record("e1"), horizon_seconds=HORIZON)
    store.record_assignment("e1", "A", None)  # followed
    result = store.record_outcome("e1", DROPOUT, None, censored=True)
    assert result.record.censored and result.record.reward is None
    assert store.pending_count() == 0
    assert store.learning_lag() == 2  # the assignment and the censored outcome
    assert store.group_counts()["treatment"].censored == 1
    # overridden recommendation: neither its assignment nor its outcome is published
    store.put_decision(record("e2"), horizon_seconds=HORIZON)
    store.record_assignment("e2", "B", "capacity")
    store.record_outcome("e2", DROPOUT, None, censored=True)
    # control: never published, censored or not
    store.put_decision(record("c1", group=Group.CONTROL), horizon_seconds=HORIZON)
    store.record_outcome("c1", EMPLOYED, 1.0, censored=False)
    store.put_decision(record("c2", group=Group.CONTROL), horizon_seconds=HORIZON)
    store.record_outcome("c2", DROPOUT, None, censored=True)
    assert store.learning_lag() == 2
    assert _queued_event_ids(store) == ["e1", "e1"]
    assert store.group_counts()["control"].censored == 1


def test_a_followed_assignment_is_published_an_overridden_one_is_not(store: DecisionStore):
    for event_id in ("followed", "overridden", "outcome_first"):
        store.put_decision(record(event_id), horizon_seconds=HORIZON)
    store.put_decision(record("control", group=Group.CONTROL), horizon_seconds=HORIZON)
    assert store.record_assignment("followed", "A", None).record.complied is True
    assert store.learning_lag() == 1
    assert not store.record_assignment("followed", "A", None).changed  # replay: not again
    assert store.record_assignment("overridden", "B", "capacity").record.complied is False
    store.record_assignment("control", "A", None)  # a control record has no recommendation
    assert store.learning_lag() == 1
    # an outcome before any assignment is published (the learner waits for the assignment),
    # and the followed assignment that comes after it is published as well
    store.record_outcome("outcome_first", EMPLOYED, 1.0, censored=False)
    store.record_assignment("outcome_first", "A", None)
    assert store.learning_lag() == 3
    assert _queued_event_ids(store) == ["followed", "outcome_first", "outcome_first"]


def test_expired_pending_returns_only_unsettled_records_past_their_horizon(store: DecisionStore):
    store.put_decision(record("old1", timestamp=T0), horizon_seconds=HORIZON)
    store.put_decision(record("old2", timestamp=T0 + 10), horizon_seconds=HORIZON)
    store.put_decision(record("settled", timestamp=T0), horizon_seconds=HORIZON)
    store.put_decision(record("young", timestamp=T0 + HORIZON), horizon_seconds=HORIZON)
    store.record_outcome("settled", EMPLOYED, 1.0, censored=False)
    now = T0 + HORIZON + 100
    assert [r.event_id for r in store.expired_pending(now)] == ["old1", "old2"]
    assert [r.event_id for r in store.expired_pending(now, limit=1)] == ["old1"]
    assert store.expired_pending(T0 + HORIZON - 1) == []


def test_iter_records_yields_every_record_oldest_first(store: DecisionStore):
    ids = [f"e{i:04d}" for i in range(1203)]  # more than one page
    for i, event_id in enumerate(ids):
        store.put_decision(record(event_id, timestamp=T0 + i), horizon_seconds=HORIZON)
    assert [r.event_id for r in store.iter_records()] == ids


def test_group_counts_count_decisions_settlements_employment_and_censoring(store: DecisionStore):
    for i in range(4):
        store.put_decision(record(f"t{i}"), horizon_seconds=HORIZON)
    for i in range(3):
        store.put_decision(record(f"c{i}", group=Group.CONTROL), horizon_seconds=HORIZON)
    store.record_outcome("t0", EMPLOYED, 1.0, censored=False)
    store.record_outcome("t1", NOT_EMPLOYED, 0.0, censored=False)
    store.record_outcome("t2", DROPOUT, None, censored=True)
    store.record_outcome("c0", EMPLOYED, 1.0, censored=False)
    # a job found after the horizon settles as reward 0: not employed *within the horizon*
    store.record_outcome(
        "c1", Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=40.0), 0.0, censored=False
    )
    counts = store.group_counts()
    t, c = counts["treatment"], counts["control"]
    assert (t.decisions, t.settled, t.employed, t.censored) == (4, 3, 1, 1)
    assert (c.decisions, c.settled, c.employed, c.censored) == (3, 2, 1, 0)
    assert store.pending_count() == 2


def test_group_counts_are_zero_for_an_empty_store(store: DecisionStore):
    counts = store.group_counts()
    assert set(counts) >= {"treatment", "control"}
    assert all(c.decisions == 0 for c in counts.values())


# ---------------------------------------------------------------------------- learning queue


def _settle(store: DecisionStore, *event_ids: str) -> None:
    for event_id in event_ids:
        store.put_decision(record(event_id), horizon_seconds=HORIZON)
        store.record_outcome(event_id, EMPLOYED, 1.0, censored=False)


def test_each_learning_message_goes_to_one_consumer_until_acked(store: DecisionStore):
    _settle(store, "e1", "e2", "e3")
    assert store.learning_lag() == 3
    a = store.read_learning("a", 2)
    b = store.read_learning("b", 10)
    assert [m.event_id for m in a] == ["e1", "e2"]
    assert [m.event_id for m in b] == ["e3"]
    assert all(m.deliveries == 1 for m in a + b)
    assert store.read_learning("b", 10) == []
    for m in a + b:
        store.ack_learning(m.message_id)
    assert store.learning_lag() == 0
    time.sleep(CLAIM_IDLE_SECONDS * 2)
    assert store.read_learning("c", 10) == []


def test_unacked_messages_of_a_dead_consumer_are_redelivered(store: DecisionStore):
    _settle(store, "e1")
    (first,) = store.read_learning("dead", 10)
    assert store.read_learning("alive", 10) == []  # not idle yet
    time.sleep(CLAIM_IDLE_SECONDS * 2)
    (again,) = store.read_learning("alive", 10)
    assert again.event_id == "e1" and again.message_id == first.message_id
    assert again.deliveries == 2
    store.ack_learning(again.message_id)
    assert store.learning_lag() == 0


def test_a_restarted_consumer_gets_its_own_pending_messages_first(store_factory: StoreFactory):
    store = store_factory()
    _settle(store, "e1", "e2")
    assert [m.event_id for m in store.read_learning("worker-1", 1)] == ["e1"]
    restarted = store_factory()  # same backend, new process
    got = restarted.read_learning("worker-1", 10)
    assert [m.event_id for m in got] == ["e1", "e2"]
    assert got[0].deliveries >= 2


def test_blocking_read_waits_for_a_message(store_factory: StoreFactory):
    reader, writer = store_factory(), store_factory()
    timer = threading.Timer(0.15, _settle, args=(writer, "late"))
    timer.start()
    started = time.monotonic()
    got = reader.read_learning("a", 1, block_ms=3000)
    timer.join()
    assert [m.event_id for m in got] == ["late"]
    assert time.monotonic() - started < 3.0
    assert reader.read_learning("a", 1, block_ms=50) == []


def test_dead_letter_removes_the_message_from_the_queue(store: DecisionStore):
    _settle(store, "e1", "e2")
    bad, good = store.read_learning("a", 2)
    store.dead_letter(bad, "model exploded")
    assert store.learning_lag() == 1
    time.sleep(CLAIM_IDLE_SECONDS * 2)
    redelivered = store.read_learning("b", 10)
    assert [m.event_id for m in redelivered] == [good.event_id]


# ---------------------------------------------------------------------------- models


def test_model_snapshots_latest_wins_and_bytes_round_trip(store: DecisionStore):
    assert store.latest_model() is None
    blob = bytes(range(256)) * 3
    store.save_model(ModelSnapshot("v1", b"first", 1.0))
    store.save_model(ModelSnapshot("v2", blob, 2.0))
    latest = store.latest_model()
    assert latest == ModelSnapshot("v2", blob, 2.0)


# ---------------------------------------------------------------------------- concurrency


def test_concurrent_writers_lose_nothing(store_factory: StoreFactory):
    stores = [store_factory() for _ in range(4)]
    n_per_thread = 25
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            s = stores[k]
            for i in range(n_per_thread):
                event_id = f"w{k}-{i}"
                s.put_decision(record(event_id), request_id=f"r{k}-{i}", horizon_seconds=HORIZON)
                s.record_outcome(event_id, EMPLOYED, 1.0, censored=False)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reader = store_factory()
    assert len(list(reader.iter_records())) == 4 * n_per_thread
    counts = reader.group_counts()["treatment"]
    assert (counts.decisions, counts.settled, counts.employed) == (100, 100, 100)
    assert reader.learning_lag() == 100
    assert reader.pending_count() == 0


def test_data_survive_closing_and_reopening_the_store(store_factory: StoreFactory):
    first = store_factory()
    first.put_decision(record("e1"), request_id="req", horizon_seconds=HORIZON)
    first.record_assignment("e1", "A", None)
    first.save_model(ModelSnapshot("v1", b"model", 3.0))
    first.close()
    second = store_factory()
    rec = second.get_decision("e1")
    assert rec.assigned == "A"
    assert not second.put_decision(record("e9"), request_id="req", horizon_seconds=HORIZON).changed
    latest = second.latest_model()
    assert latest is not None and latest.version == "v1"


# ---------------------------------------------------------------------------- spell history


def test_decisions_of_reads_one_pseudonyms_records_oldest_first(store: DecisionStore):
    citizen, other = "p_" + "a" * 64, "p_" + "b" * 64
    # written out of time order: the store orders by decision time, not by insertion
    for event_id, ts in (("e2", T0 + 200), ("e1", T0 + 100), ("e3", T0 + 300)):
        rec = dataclasses.replace(record(event_id, timestamp=ts), citizen_key=citizen)
        store.put_decision(rec, horizon_seconds=HORIZON)
    store.put_decision(
        dataclasses.replace(record("x1"), citizen_key=other), horizon_seconds=HORIZON
    )
    store.record_assignment("e1", "B", "capacity")
    mine = store.decisions_of(citizen)
    assert [r.event_id for r in mine] == ["e1", "e2", "e3"]
    assert mine[0].assigned == "B"  # the current version of each record
    assert [r.event_id for r in store.decisions_of(citizen, limit=2)] == ["e2", "e3"]
    assert [r.event_id for r in store.decisions_of(other)] == ["x1"]
    assert store.decisions_of("p_" + "c" * 64) == []
