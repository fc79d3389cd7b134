"""The production store: decision records, learning queue and model snapshots in Redis.

Layout (names in :mod:`service.redis.keys`): one hash per record (JSON + insertion sequence),
an insertion-ordered index, a sorted set of pending decisions scored by their horizon, per-group
counters, an audit stream of every write, the learning stream (consumer group, dead-letter
stream) and versioned model snapshots. Every write is one Lua script or one ``MULTI``
transaction, so it is atomic and safe to retry. Serialisation is JSON (records) and raw bytes
(policy snapshots); never pickle. No ``KEYS``/``SCAN`` on any path.

Durability: with ``appendonly yes`` and ``appendfsync always`` Redis fsyncs the AOF before it
replies, so a method that returned is on disk (see ``docker-compose.yml``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
import redis

from bandit.context import ProtectedAttributes
from bandit.errors import ConflictError, UnknownEventError
from bandit.records import DecisionRecord
from bandit.rewards import Outcome
from service.redis.client import as_text, make_client
from service.redis.keys import LEARNING_GROUP, RedisKeys
from service.redis.scripts import StoreScripts
from service.redis.streams import LearningStream
from service.store.base import (
    CITIZEN_HISTORY_LIMIT,
    REUSED_REQUEST_ID,
    GroupCounts,
    LearningMessage,
    ModelSnapshot,
    WriteResult,
    employed_within_horizon,
    is_correction,
    publishes_assignment,
    publishes_outcome,
)
from service.store.record_codec import RecordCodec, catalog_fingerprint, catalog_text

_GROUPS = ("treatment", "control")
_CAS_ATTEMPTS = 50
_PAGE = 500


class RedisStore:
    """:class:`~service.store.base.DecisionStore` backed by Redis.

    Parameters
    ----------
    url
        ``redis://host:port/db``.
    prefix
        Key prefix (``Settings.redis_prefix``).
    events_maxlen
        Approximate length cap of the audit stream (the records themselves are never trimmed).
    claim_idle_ms
        Learning messages idle this long at a consumer are re-delivered to another one.
    idempotency_ttl_seconds
        Lifetime of request-id keys (0 = forever).
    keep_models
        Number of model snapshots kept.
    client
        An existing client to reuse instead of ``url`` (tests, shared pools).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "nbi:",
        events_maxlen: int = 1_000_000,
        claim_idle_ms: int = 60_000,
        idempotency_ttl_seconds: int = 7 * 24 * 3600,
        keep_models: int = 20,
        client: redis.Redis | None = None,
    ) -> None:
        self.url = url
        self.keys = RedisKeys(prefix)
        self.events_maxlen = events_maxlen
        self.idempotency_ttl_seconds = idempotency_ttl_seconds
        self.keep_models = keep_models
        self.client = client if client is not None else make_client(url)
        self._scripts = StoreScripts.register(self.client)
        self.codec = RecordCodec(self._catalog_ids)
        self.learning = LearningStream(self.client, self.keys, claim_idle_ms=claim_idle_ms)

    # ------------------------------------------------------------------ lifecycle

    def register_catalog(self, ids: Sequence[str]) -> str:
        """Keep the catalog's ids (once per fingerprint) and encode new records against it."""
        self.client.set(self.keys.catalog(catalog_fingerprint(ids)), catalog_text(ids), nx=True)
        return self.codec.use_catalog(ids)

    def _catalog_ids(self, fingerprint: str) -> list[str] | None:
        raw: Any = self.client.get(self.keys.catalog(fingerprint))
        return None if raw is None else [str(a) for a in orjson.loads(raw)]

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.client.ping())
        except redis.exceptions.RedisError:
            return False

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()

    # ------------------------------------------------------------------ decisions

    def put_decision(
        self,
        record: DecisionRecord,
        *,
        request_id: str | None = None,
        protected: ProtectedAttributes | None = None,
        horizon_seconds: float,
        request_fingerprint: str | None = None,
    ) -> WriteResult:
        """Store a new record atomically (record, index, pending, counters, audit, request id);
        a request id replayed with another body (fingerprint) is a :class:`ConflictError`."""
        k = self.keys
        group = record.group.value
        protected_json = "" if protected is None else protected.model_dump_json()
        reply: Any = self._scripts.put_decision(
            keys=[
                k.record(record.event_id),
                k.idempotency(request_id or "-"),
                k.record_index,
                k.sequence,
                k.pending,
                k.group_counts(group),
                k.events_stream,
                k.protected(record.event_id),
                k.citizen(record.citizen_key),
                k.record_times,
            ],
            args=[
                record.event_id,
                self.codec.dumps(record),
                repr(record.timestamp + horizon_seconds),
                "1" if request_id else "0",
                protected_json,
                self.events_maxlen,
                self.idempotency_ttl_seconds,
                request_fingerprint or "",
                repr(record.timestamp),
            ],
        )
        status, event_id = int(reply[0]), as_text(reply[1])
        if status == -2:  # noqa: PLR2004
            raise ConflictError(REUSED_REQUEST_ID)
        if status == -1:
            msg = f"Event {event_id} already exists with different content"
            raise ConflictError(msg)
        if status == 1:
            return WriteResult(record, changed=True)
        return WriteResult(self.get_decision(event_id), changed=False)

    def get_decision(self, event_id: str) -> DecisionRecord:
        """The record of ``event_id``; :class:`UnknownEventError` if there is none."""
        raw = self._raw(event_id)
        return self.codec.loads(raw)

    def get_protected(self, event_id: str) -> ProtectedAttributes | None:
        """Protected attributes of ``event_id`` (``None`` if none were sent)."""
        raw: Any = self.client.get(self.keys.protected(event_id))
        if raw is None:
            if not self.client.exists(self.keys.record(event_id)):
                msg = f"Unknown event {event_id}"
                raise UnknownEventError(msg)
            return None
        return ProtectedAttributes.model_validate_json(raw)

    def record_assignment(self, event_id: str, assigned: str, reason: str | None) -> WriteResult:
        """Store the caseworker's assignment (same again: no-op; different: conflict)."""
        for _ in range(_CAS_ATTEMPTS):
            raw = self._raw(event_id)
            current = self.codec.loads(raw)
            if current.assigned is not None:
                if current.assigned == assigned and current.assignment_reason == reason:
                    return WriteResult(current, changed=False)
                msg = f"Event {event_id} already has a different assignment"
                raise ConflictError(msg)
            updated = current.with_assignment(assigned, reason)
            if self._cas(raw, updated, kind="assignment"):
                return WriteResult(updated, changed=True)
        msg = f"Too much contention on event {event_id}"
        raise ConflictError(msg)

    def record_outcome(
        self, event_id: str, outcome: Outcome, reward: float | None, *, censored: bool
    ) -> WriteResult:
        """Settle the record and publish it to the learning stream when it was followed."""
        for _ in range(_CAS_ATTEMPTS):
            raw = self._raw(event_id)
            current = self.codec.loads(raw)
            correction = is_correction(current.outcome, outcome)
            if current.outcome is not None and not correction:
                same = (
                    current.outcome == outcome
                    and current.reward == reward
                    and current.censored == censored
                )
                if same:
                    return WriteResult(current, changed=False)
                msg = f"Event {event_id} already has a different outcome"
                raise ConflictError(msg)
            updated = current.with_outcome(outcome, reward, censored=censored)
            kind = "correction" if correction else "outcome"
            previous = "" if current.outcome is None else current.outcome.status.value
            if self._cas(raw, updated, kind=kind, previous=previous):
                return WriteResult(updated, changed=True)
        msg = f"Too much contention on event {event_id}"
        raise ConflictError(msg)

    def corrections(self) -> list[dict[str, str]]:
        """Audit entries of late reports that replaced ``not_reported`` (oldest first)."""
        entries: Any = self.client.xrange(self.keys.corrections_stream)
        return [{as_text(k): as_text(v) for k, v in fields.items()} for _, fields in entries]

    def expired_pending(self, now: float, limit: int = 1000) -> list[DecisionRecord]:
        """Unsettled records whose horizon is at or before ``now`` (earliest first)."""
        ids: Any = self.client.zrangebyscore(self.keys.pending, "-inf", now, start=0, num=limit)
        return self._fetch([as_text(i) for i in ids])

    def pending_count(self) -> int:
        """Number of unsettled records."""
        return int(self.client.zcard(self.keys.pending))

    def iter_records(self) -> Iterator[DecisionRecord]:
        """Every record in insertion order, fetched in pages."""
        start = 0
        while True:
            ids: Any = self.client.zrange(self.keys.record_index, start, start + _PAGE - 1)
            if not ids:
                return
            yield from self._fetch([as_text(i) for i in ids])
            start += len(ids)

    def decisions_of(
        self, citizen_key: str, limit: int = CITIZEN_HISTORY_LIMIT
    ) -> list[DecisionRecord]:
        """The newest ``limit`` records of ``citizen_key``, oldest first: the pseudonym's set,
        ordered by decision time then insertion (one pipelined round trip), then the records."""
        members: Any = self.client.smembers(self.keys.citizen(citizen_key))
        if not members:
            return []
        ids = [as_text(m) for m in members]
        pipe = self.client.pipeline(transaction=False)
        for event_id in ids:
            pipe.zscore(self.keys.record_times, event_id)
            pipe.zscore(self.keys.record_index, event_id)
        scores: Any = pipe.execute()
        order = sorted(
            range(len(ids)),
            key=lambda i: (float(scores[2 * i] or 0.0), float(scores[2 * i + 1] or 0.0)),
        )
        return self._fetch([ids[i] for i in order[-limit:]] if limit > 0 else [])

    def group_counts(self) -> dict[str, GroupCounts]:
        """Counters per RCT arm (zeros for an arm without decisions)."""
        pipe = self.client.pipeline(transaction=False)
        for group in _GROUPS:
            pipe.hgetall(self.keys.group_counts(group))
        out = {}
        for group, raw in zip(_GROUPS, pipe.execute(), strict=True):
            data = {as_text(k): int(v) for k, v in raw.items()}
            out[group] = GroupCounts(
                decisions=data.get("decisions", 0),
                settled=data.get("settled", 0),
                employed=data.get("employed", 0),
                censored=data.get("censored", 0),
            )
        return out

    # ------------------------------------------------------------------ learning queue

    def read_learning(self, consumer: str, count: int, block_ms: int = 0) -> list[LearningMessage]:
        """Own unacknowledged messages first, then idle ones claimed, then new ones."""
        return self.learning.read(consumer, count, block_ms)

    def reread_own_learning(self, consumer: str) -> None:
        """Re-read ``consumer``'s own unacknowledged messages first at its next read."""
        self.learning.reread_history(consumer)

    def ack_learning(self, message_id: str) -> None:
        """Acknowledge (and delete) one learning message."""
        self.learning.ack([message_id])

    def dead_letter(self, message: LearningMessage, error: str) -> None:
        """Move a message to the dead-letter stream and acknowledge it (one transaction)."""
        self.learning.dead_letter(message, error)

    def learning_lag(self) -> int:
        """Messages published but not yet acknowledged."""
        return self.learning.lag()

    # ------------------------------------------------------------------ model snapshots

    def save_model(self, snapshot: ModelSnapshot) -> None:
        """Publish a snapshot (becomes the latest; older ones beyond ``keep_models`` dropped)."""
        self.commit_learning(snapshot, ())

    def commit_learning(self, snapshot: ModelSnapshot, message_ids: Sequence[str]) -> None:
        """Publish ``snapshot`` and acknowledge the messages it has learned, atomically.

        The learner acknowledges a message only together with the first snapshot that contains
        it, so a crash at any point neither loses nor double-learns an event.
        """
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        self._scripts.save_model(
            keys=[k.model(snapshot.version), k.model_index, k.model_latest, k.control],
            args=[
                snapshot.version,
                snapshot.data,
                repr(snapshot.created_at),
                self.keep_models,
                k.model(""),
            ],
            client=pipe,
        )
        if message_ids:
            self.learning.queue_ack(pipe, message_ids)
        pipe.execute()

    def latest_model(self) -> ModelSnapshot | None:
        """The newest snapshot, or ``None``."""
        reply: Any = self._scripts.latest_model(
            keys=[self.keys.model_latest], args=[self.keys.model("")]
        )
        if not reply or reply[0] is None:
            return None
        return ModelSnapshot(
            version=as_text(reply[0]), data=bytes(reply[1]), created_at=float(reply[2])
        )

    def latest_model_version(self) -> str | None:
        """Version of the newest snapshot without fetching its data (cheap polling)."""
        raw: Any = self.client.get(self.keys.model_latest)
        return None if raw is None else as_text(raw)

    def get_model(self, version: str) -> ModelSnapshot | None:
        """The kept snapshot ``version``, or ``None``."""
        reply: Any = self.client.hmget(self.keys.model(version), "version", "data", "created_at")
        if not reply or reply[0] is None:
            return None
        return ModelSnapshot(as_text(reply[0]), bytes(reply[1]), float(reply[2]))

    def model_versions(self) -> list[tuple[str, float]]:
        """``(version, created_at)`` of every kept snapshot, newest first."""
        rows: Any = self.client.zrevrange(self.keys.model_index, 0, -1, withscores=True)
        return [(as_text(v), float(t)) for v, t in rows]

    def get_control(self) -> dict[str, str]:
        """The lifecycle control values (approved version, mode, kill switch)."""
        raw: Any = self.client.hgetall(self.keys.control)
        return {as_text(n): as_text(v) for n, v in raw.items()}

    def set_control(self, values: Mapping[str, str | None]) -> None:
        """Set (or, for ``None``, remove) control values in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        for name, value in values.items():
            if value is None:
                pipe.hdel(self.keys.control, name)
            else:
                pipe.hset(self.keys.control, name, value)
        pipe.execute()

    # ------------------------------------------------------------------ single-writer lease

    def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        """Take or renew the lease ``name`` for ``owner`` for ``ttl_ms``; ``False`` if held
        by someone else (e.g. a second learner stays a hot standby)."""
        return self.acquire_fenced_lease(name, owner, ttl_ms) > 0

    def acquire_fenced_lease(self, name: str, owner: str, ttl_ms: int) -> int:
        """Like :meth:`acquire_lease`, returning the holding's fencing token (0: not held).

        Each new holding gets a larger token; a renewal keeps it.
        """
        k = self.keys
        reply: Any = self._scripts.acquire_lease(
            keys=[k.lease(name), k.lease_fence(name)], args=[owner, ttl_ms]
        )
        return int(reply)

    def commit_fenced(
        self, name: str, token: int, snapshot: ModelSnapshot | None, message_ids: Sequence[str]
    ) -> bool:
        """Publish ``snapshot`` (if any) and acknowledge ``message_ids`` in one Lua script,
        only while ``token`` is the current fencing token of lease ``name``.

        ``False``: a newer holding exists; nothing was written and the messages stay pending.
        """
        k = self.keys
        version = snapshot.version if snapshot is not None else ""
        reply: Any = self._scripts.fenced_commit(
            keys=[
                k.lease_fence(name),
                k.model(version),
                k.model_index,
                k.model_latest,
                k.control,
                k.learning_stream,
            ],
            args=[
                token,
                LEARNING_GROUP,
                "1" if snapshot is not None else "0",
                version,
                snapshot.data if snapshot is not None else b"",
                repr(snapshot.created_at) if snapshot is not None else "0",
                self.keep_models,
                k.model(""),
                *message_ids,
            ],
        )
        return int(reply) == 1

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it."""
        self._scripts.release_lease(keys=[self.keys.lease(name)], args=[owner])

    # ------------------------------------------------------------------ internals

    def _raw(self, event_id: str) -> bytes:
        raw: Any = self.client.hget(self.keys.record(event_id), "json")
        if raw is None:
            msg = f"Unknown event {event_id}"
            raise UnknownEventError(msg)
        return bytes(raw)

    def _fetch(self, event_ids: list[str]) -> list[DecisionRecord]:
        if not event_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.hget(self.keys.record(event_id), "json")
        return [self.codec.loads(raw) for raw in pipe.execute() if raw]

    def _cas(
        self, expected: bytes, updated: DecisionRecord, *, kind: str, previous: str = ""
    ) -> bool:
        k = self.keys
        outcome = updated.outcome
        employed = outcome is not None and employed_within_horizon(
            updated.reward, censored=updated.censored
        )
        publish = (
            publishes_assignment(updated) if kind == "assignment" else publishes_outcome(updated)
        )
        reply: Any = self._scripts.update_record(
            keys=[
                k.record(updated.event_id),
                k.pending,
                k.group_counts(updated.group.value),
                k.events_stream,
                k.learning_stream,
                k.corrections_stream,
            ],
            args=[
                expected,
                self.codec.dumps(updated),
                updated.event_id,
                kind,
                "1" if employed else "0",
                "1" if updated.censored else "0",
                "1" if publish else "0",
                self.events_maxlen,
                previous,
            ],
        )
        return int(reply) == 1
