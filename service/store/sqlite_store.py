"""The embedded store: decision records, learning queue and model snapshots in one SQLite file.

Runs with no external server, so ``make run`` works on a bare machine. The database is in WAL
mode with ``synchronous=FULL``: a method returns only after its transaction is committed and
fsynced. Every write is one ``BEGIN IMMEDIATE`` transaction (record, pending state, counters and
learning-queue entry change together or not at all). Several processes may share the file (WAL
and a busy timeout); within a process one connection is shared under a lock.

Tables: ``decisions`` (JSON record + indexed columns for pending/counters), ``request_ids``
(idempotency keys), ``protected`` (audit-only attributes, apart from the records),
``learning`` (queue with consumer, claim time and delivery count; acknowledged entries are
deleted), ``dead_letters`` and ``models`` (versioned snapshots).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bandit.context import ProtectedAttributes
from bandit.errors import ConflictError, UnknownEventError
from bandit.records import DecisionRecord
from bandit.rewards import Outcome
from service.store import sqlite_lease
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
_PAGE = 500
_POLL_SECONDS = 0.02

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    grp TEXT NOT NULL,
    timestamp REAL NOT NULL,
    due REAL NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    employed INTEGER NOT NULL DEFAULT 0,
    censored INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_pending ON decisions (settled, due);
CREATE TABLE IF NOT EXISTS request_ids (
    request_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    fingerprint TEXT,
    expires REAL
);
CREATE TABLE IF NOT EXISTS protected (
    event_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS learning (
    message_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    consumer TEXT,
    claimed_at REAL,
    kind TEXT NOT NULL DEFAULT 'outcome'
);
CREATE INDEX IF NOT EXISTS learning_consumer ON learning (consumer, claimed_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    message_id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS corrections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    previous TEXT NOT NULL,
    new TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL UNIQUE,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS catalogs (
    fingerprint TEXT PRIMARY KEY,
    ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS control (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class SQLiteStore:
    """:class:`~service.store.base.DecisionStore` in a local SQLite file.

    Parameters
    ----------
    path
        Database file (parent directories are created ``0700``, a new file ``0600``; its WAL
        and shared-memory files get the same permissions).
    claim_idle_seconds
        Learning messages unacknowledged this long at a consumer are re-delivered.
    idempotency_ttl_seconds
        Lifetime of request ids (0 = forever), as in the Redis store.
    keep_models
        Number of model snapshots kept.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = SQLiteStore(pathlib.Path(d) / "nbi.sqlite3")
    ...     ok = store.ping(), store.pending_count()
    ...     store.close()
    >>> ok
    (True, 0)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        claim_idle_seconds: float = 60.0,
        idempotency_ttl_seconds: int = 7 * 24 * 3600,
        keep_models: int = 20,
    ) -> None:
        self.path = Path(path)
        self.claim_idle_seconds = claim_idle_seconds
        self.idempotency_ttl_seconds = idempotency_ttl_seconds
        self.keep_models = keep_models
        for parent in reversed([self.path.parent, *self.path.parent.parents]):
            if not parent.exists():
                parent.mkdir(mode=0o700, exist_ok=True)
        # Created owner-only before SQLite opens it; SQLite gives its WAL and shared-memory
        # files the database file's permissions. An existing file is never opened outside
        # SQLite: closing a plain descriptor drops every POSIX lock this process holds on it
        # (another connection's too), and another process could then delete the live WAL.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.RLock()
        self._history_done: set[str] = set()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        # freed content is zeroed, so an erased record leaves no old version behind
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.executescript(_SCHEMA)
        self._conn.executescript(sqlite_lease.LEASE_SCHEMA)
        self._migrate()
        self.codec = RecordCodec(self._catalog_ids)

    # ------------------------------------------------------------------ plumbing

    def _migrate(self) -> None:
        """Add columns that files created by older versions lack."""
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(learning)")}
        if "kind" not in columns:
            self._conn.execute(
                "ALTER TABLE learning ADD COLUMN kind TEXT NOT NULL DEFAULT 'outcome'"
            )
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(request_ids)")}
        for column in ("fingerprint TEXT", "expires REAL"):
            if column.split()[0] not in columns:
                self._conn.execute(f"ALTER TABLE request_ids ADD COLUMN {column}")
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS request_ids_expires ON request_ids (expires)"
        )
        # the pseudonym index of erasure (service/store/sqlite_erasure.py, same definition):
        # a citizen's records without a scan, for erasure and for the spell history
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS decisions_citizen "
            "ON decisions (json_extract(record, '$.citizen_key'))"
        )

    class _Tx:
        def __init__(self, store: SQLiteStore) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Cursor:
            self.store._lock.acquire()
            try:
                cur = self.store._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            self.cur = cur
            return cur

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                self.cur.execute("COMMIT" if exc_type is None else "ROLLBACK")
            finally:
                self.store._lock.release()

    def _write(self) -> SQLiteStore._Tx:
        return SQLiteStore._Tx(self)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ lifecycle

    def register_catalog(self, ids: Sequence[str]) -> str:
        """Keep the catalog's ids (once per fingerprint) and encode new records against it."""
        with self._write() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO catalogs (fingerprint, ids) VALUES (?, ?)",
                (catalog_fingerprint(ids), catalog_text(ids)),
            )
        return self.codec.use_catalog(ids)

    def _catalog_ids(self, fingerprint: str) -> list[str] | None:
        rows = self._query("SELECT ids FROM catalogs WHERE fingerprint = ?", (fingerprint,))
        return None if not rows else [str(a) for a in json.loads(rows[0][0])]

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            return self._query("SELECT 1") == [(1,)]
        except sqlite3.Error:
            return False

    def close(self) -> None:
        """Close the connection (the data stays on disk)."""
        with self._lock:
            self._conn.close()

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
        """Store a new record; a replayed ``request_id`` returns the first record unchanged
        (another body: :class:`ConflictError`); request ids expire after the TTL."""
        data = self.codec.dumps(record)
        now = time.time()
        with self._write() as cur:
            if request_id is not None:
                # expired request ids go first (indexed: only the expired rows are visited)
                cur.execute("DELETE FROM request_ids WHERE expires < ?", (now,))
                row = cur.execute(
                    "SELECT d.record, r.fingerprint FROM request_ids r "
                    "JOIN decisions d USING (event_id) WHERE r.request_id = ?",
                    (request_id,),
                ).fetchone()
                if row is not None:
                    if request_fingerprint and row[1] and row[1] != request_fingerprint:
                        raise ConflictError(REUSED_REQUEST_ID)
                    return WriteResult(self.codec.loads(row[0]), changed=False)
            row = cur.execute(
                "SELECT record FROM decisions WHERE event_id = ?", (record.event_id,)
            ).fetchone()
            if row is not None:
                if row[0] != data:
                    msg = f"Event {record.event_id} already exists with different content"
                    raise ConflictError(msg)
                return WriteResult(self.codec.loads(row[0]), changed=False)
            cur.execute(
                "INSERT INTO decisions (event_id, grp, timestamp, due, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.event_id,
                    record.group.value,
                    record.timestamp,
                    record.timestamp + horizon_seconds,
                    data,
                ),
            )
            if request_id is not None:
                ttl = self.idempotency_ttl_seconds
                cur.execute(
                    "INSERT INTO request_ids (request_id, event_id, fingerprint, expires) "
                    "VALUES (?, ?, ?, ?)",
                    (request_id, record.event_id, request_fingerprint, now + ttl if ttl else None),
                )
            if protected is not None:
                cur.execute(
                    "INSERT INTO protected (event_id, data) VALUES (?, ?)",
                    (record.event_id, protected.model_dump_json()),
                )
        return WriteResult(record, changed=True)

    def get_decision(self, event_id: str) -> DecisionRecord:
        """The record of ``event_id``; :class:`UnknownEventError` if there is none."""
        rows = self._query("SELECT record FROM decisions WHERE event_id = ?", (event_id,))
        if not rows:
            msg = f"Unknown event {event_id}"
            raise UnknownEventError(msg)
        return self.codec.loads(rows[0][0])

    def get_protected(self, event_id: str) -> ProtectedAttributes | None:
        """Protected attributes of ``event_id`` (``None`` if none were sent)."""
        self.get_decision(event_id)
        rows = self._query("SELECT data FROM protected WHERE event_id = ?", (event_id,))
        return ProtectedAttributes.model_validate_json(rows[0][0]) if rows else None

    def record_assignment(self, event_id: str, assigned: str, reason: str | None) -> WriteResult:
        """Store the caseworker's assignment (same again: no-op; different: conflict)."""
        with self._write() as cur:
            current = self._locked_get(cur, event_id)
            if current.assigned is not None:
                if current.assigned == assigned and current.assignment_reason == reason:
                    return WriteResult(current, changed=False)
                msg = f"Event {event_id} already has a different assignment"
                raise ConflictError(msg)
            updated = current.with_assignment(assigned, reason)
            cur.execute(
                "UPDATE decisions SET record = ? WHERE event_id = ?",
                (self.codec.dumps(updated), event_id),
            )
            if publishes_assignment(updated):
                cur.execute(
                    "INSERT INTO learning (event_id, kind) VALUES (?, 'assignment')", (event_id,)
                )
        return WriteResult(updated, changed=True)

    def record_outcome(
        self, event_id: str, outcome: Outcome, reward: float | None, *, censored: bool
    ) -> WriteResult:
        """Settle the record and publish it to the learning queue when it was followed; a late
        report replacing ``not_reported`` is stored as an audited correction."""
        with self._write() as cur:
            current = self._locked_get(cur, event_id)
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
            employed = employed_within_horizon(reward, censored=censored)
            cur.execute(
                "UPDATE decisions SET record = ?, settled = 1, employed = ?, censored = ? "
                "WHERE event_id = ?",
                (self.codec.dumps(updated), int(employed), int(censored), event_id),
            )
            kind = "outcome"
            if correction:
                assert current.outcome is not None  # noqa: S101 (a correction replaces one)
                kind = "correction"
                cur.execute(
                    "INSERT INTO corrections (event_id, previous, new, at) VALUES (?, ?, ?, ?)",
                    (event_id, current.outcome.status.value, outcome.status.value, time.time()),
                )
            if publishes_outcome(updated):
                cur.execute("INSERT INTO learning (event_id, kind) VALUES (?, ?)", (event_id, kind))
        return WriteResult(updated, changed=True)

    def corrections(self) -> list[dict[str, str]]:
        """Audit entries of late reports that replaced ``not_reported`` (oldest first)."""
        rows = self._query("SELECT event_id, previous, new, at FROM corrections ORDER BY seq")
        return [
            {"event_id": e, "previous": p, "new": n, "at": repr(float(a))} for e, p, n, a in rows
        ]

    def expired_pending(self, now: float, limit: int = 1000) -> list[DecisionRecord]:
        """Unsettled records whose horizon is at or before ``now`` (earliest first)."""
        rows = self._query(
            "SELECT record FROM decisions WHERE settled = 0 AND due <= ? ORDER BY due LIMIT ?",
            (now, limit),
        )
        return [self.codec.loads(r[0]) for r in rows]

    def pending_count(self) -> int:
        """Number of unsettled records."""
        return int(self._query("SELECT COUNT(*) FROM decisions WHERE settled = 0")[0][0])

    def iter_records(self) -> Iterator[DecisionRecord]:
        """Every record in insertion order, fetched in pages."""
        last = 0
        while True:
            rows = self._query(
                "SELECT seq, record FROM decisions WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, _PAGE),
            )
            if not rows:
                return
            for seq, text in rows:
                last = seq
                yield self.codec.loads(text)

    def decisions_of(
        self, citizen_key: str, limit: int = CITIZEN_HISTORY_LIMIT
    ) -> list[DecisionRecord]:
        """The newest ``limit`` records of ``citizen_key``, oldest first (pseudonym index)."""
        rows = self._query(
            "SELECT record FROM decisions WHERE json_extract(record, '$.citizen_key') = ? "
            "ORDER BY timestamp DESC, seq DESC LIMIT ?",
            (citizen_key, limit),
        )
        return [self.codec.loads(r[0]) for r in reversed(rows)]

    def group_counts(self) -> dict[str, GroupCounts]:
        """Counters per RCT arm (zeros for an arm without decisions)."""
        rows = self._query(
            "SELECT grp, COUNT(*), SUM(settled), SUM(employed), SUM(censored) "
            "FROM decisions GROUP BY grp"
        )
        out = {g: GroupCounts(0, 0, 0, 0) for g in _GROUPS}
        for grp, n, settled, employed, censored in rows:
            out[grp] = GroupCounts(
                int(n), int(settled or 0), int(employed or 0), int(censored or 0)
            )
        return out

    # ------------------------------------------------------------------ learning queue

    def reread_own_learning(self, consumer: str) -> None:
        """Re-read ``consumer``'s own unacknowledged messages first at its next read."""
        self._history_done.discard(consumer)

    def read_learning(self, consumer: str, count: int, block_ms: int = 0) -> list[LearningMessage]:
        """Own unacknowledged messages first (once per instance), then idle ones, then new."""
        deadline = time.monotonic() + block_ms / 1000.0
        while True:
            out = self._claim(consumer, count)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(_POLL_SECONDS)

    def _claim(self, consumer: str, count: int) -> list[LearningMessage]:
        now = time.time()
        with self._write() as cur:
            ids: list[int] = []
            if consumer not in self._history_done:
                self._history_done.add(consumer)
                ids += [
                    r[0]
                    for r in cur.execute(
                        "SELECT message_id FROM learning WHERE consumer = ? "
                        "ORDER BY message_id LIMIT ?",
                        (consumer, count),
                    )
                ]
            if len(ids) < count:
                ids += [
                    r[0]
                    for r in cur.execute(
                        "SELECT message_id FROM learning WHERE consumer IS NOT NULL "
                        "AND claimed_at <= ? ORDER BY message_id LIMIT ?",
                        (now - self.claim_idle_seconds, count - len(ids)),
                    )
                    if r[0] not in ids
                ]
            if len(ids) < count:
                ids += [
                    r[0]
                    for r in cur.execute(
                        "SELECT message_id FROM learning WHERE consumer IS NULL "
                        "ORDER BY message_id LIMIT ?",
                        (count - len(ids),),
                    )
                ]
            out = []
            for message_id in ids[:count]:
                cur.execute(
                    "UPDATE learning SET consumer = ?, claimed_at = ?, deliveries = deliveries + 1 "
                    "WHERE message_id = ?",
                    (consumer, now, message_id),
                )
                event_id, deliveries, kind = cur.execute(
                    "SELECT event_id, deliveries, kind FROM learning WHERE message_id = ?",
                    (message_id,),
                ).fetchone()
                out.append(LearningMessage(str(message_id), event_id, int(deliveries), kind))
        return out

    def ack_learning(self, message_id: str) -> None:
        """Acknowledge (and delete) one learning message."""
        with self._write() as cur:
            cur.execute("DELETE FROM learning WHERE message_id = ?", (_message_int(message_id),))

    def dead_letter(self, message: LearningMessage, error: str) -> None:
        """Move a message to the dead-letter table and acknowledge it (one transaction)."""
        with self._write() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO dead_letters (message_id, event_id, deliveries, error, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    _message_int(message.message_id),
                    message.event_id,
                    message.deliveries,
                    error[:500],
                    time.time(),
                ),
            )
            cur.execute(
                "DELETE FROM learning WHERE message_id = ?", (_message_int(message.message_id),)
            )

    def dead_letters(self) -> list[dict[str, str]]:
        """Dead-letter entries, oldest first (for operators and tests)."""
        rows = self._query(
            "SELECT message_id, event_id, deliveries, error FROM dead_letters ORDER BY at"
        )
        return [
            {"message_id": str(m), "event_id": e, "deliveries": str(d), "error": err}
            for m, e, d, err in rows
        ]

    def learning_lag(self) -> int:
        """Messages published but not yet acknowledged."""
        return int(self._query("SELECT COUNT(*) FROM learning")[0][0])

    # ------------------------------------------------------------------ model snapshots

    def save_model(self, snapshot: ModelSnapshot) -> None:
        """Publish a snapshot (becomes the latest; older ones beyond ``keep_models`` dropped)."""
        self.commit_learning(snapshot, ())

    def commit_learning(self, snapshot: ModelSnapshot, message_ids: Sequence[str]) -> None:
        """Publish ``snapshot`` and acknowledge the messages it has learned, atomically."""
        with self._write() as cur:
            self._publish(cur, snapshot, message_ids)

    # ------------------------------------------------------------------ fenced learner lease

    def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        """Take or renew the lease ``name`` for ``owner``; ``False`` while another holds it."""
        return self.acquire_fenced_lease(name, owner, ttl_ms) > 0

    def acquire_fenced_lease(self, name: str, owner: str, ttl_ms: int) -> int:
        """Like :meth:`acquire_lease`, returning the holding's fencing token (0: not held)."""
        with self._write() as cur:
            return sqlite_lease.acquire(cur, name, owner, ttl_ms, now=time.time())

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it."""
        with self._write() as cur:
            sqlite_lease.release(cur, name, owner)

    def commit_fenced(
        self, name: str, token: int, snapshot: ModelSnapshot | None, message_ids: Sequence[str]
    ) -> bool:
        """Publish ``snapshot`` (if any) and acknowledge ``message_ids`` in one transaction,
        only while ``token`` is the current fencing token of lease ``name``."""
        with self._write() as cur:
            if not sqlite_lease.is_current(cur, name, token):
                return False
            self._publish(cur, snapshot, message_ids)
        return True

    def _publish(
        self, cur: sqlite3.Cursor, snapshot: ModelSnapshot | None, message_ids: Sequence[str]
    ) -> None:
        if snapshot is not None:
            cur.execute("DELETE FROM models WHERE version = ?", (snapshot.version,))
            cur.execute(
                "INSERT INTO models (version, data, created_at) VALUES (?, ?, ?)",
                (snapshot.version, sqlite3.Binary(snapshot.data), snapshot.created_at),
            )
            cur.execute(  # the approved version is kept however old (service/lifecycle.py)
                "DELETE FROM models WHERE seq NOT IN "
                "(SELECT seq FROM models ORDER BY seq DESC LIMIT ?) "
                "AND version NOT IN (SELECT value FROM control WHERE name = 'approved')",
                (self.keep_models,),
            )
        cur.executemany(
            "DELETE FROM learning WHERE message_id = ?",
            [(_message_int(m),) for m in message_ids],
        )

    def latest_model(self) -> ModelSnapshot | None:
        """The newest snapshot, or ``None``."""
        rows = self._query("SELECT version, data, created_at FROM models ORDER BY seq DESC LIMIT 1")
        if not rows:
            return None
        version, data, created_at = rows[0]
        return ModelSnapshot(version=version, data=bytes(data), created_at=float(created_at))

    def latest_model_version(self) -> str | None:
        """Version of the newest snapshot without fetching its data (cheap polling)."""
        rows = self._query("SELECT version FROM models ORDER BY seq DESC LIMIT 1")
        return None if not rows else str(rows[0][0])

    def get_model(self, version: str) -> ModelSnapshot | None:
        """The kept snapshot ``version``, or ``None``."""
        rows = self._query(
            "SELECT version, data, created_at FROM models WHERE version = ?", (version,)
        )
        return None if not rows else ModelSnapshot(rows[0][0], bytes(rows[0][1]), rows[0][2])

    def model_versions(self) -> list[tuple[str, float]]:
        """``(version, created_at)`` of every kept snapshot, newest first."""
        rows = self._query("SELECT version, created_at FROM models ORDER BY seq DESC")
        return [(str(v), float(t)) for v, t in rows]

    def get_control(self) -> dict[str, str]:
        """The lifecycle control values (approved version, mode, kill switch)."""
        return {str(n): str(v) for n, v in self._query("SELECT name, value FROM control")}

    def set_control(self, values: Mapping[str, str | None]) -> None:
        """Set (or, for ``None``, remove) control values in one transaction."""
        with self._write() as cur:
            for name, value in values.items():
                if value is None:
                    cur.execute("DELETE FROM control WHERE name = ?", (name,))
                else:
                    cur.execute(
                        "INSERT OR REPLACE INTO control (name, value) VALUES (?, ?)", (name, value)
                    )

    # ------------------------------------------------------------------ internals

    def _locked_get(self, cur: sqlite3.Cursor, event_id: str) -> DecisionRecord:
        row = cur.execute("SELECT record FROM decisions WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            msg = f"Unknown event {event_id}"
            raise UnknownEventError(msg)
        return self.codec.loads(row[0])


def _message_int(message_id: str) -> int:
    try:
        return int(message_id)
    except ValueError:
        return -1
