"""Erasure and retention in the SQLite store: by pseudonym (indexed) or by age.

Own connection with ``PRAGMA secure_delete=ON`` (deleted content is overwritten with zeros,
free pages included), one ``BEGIN IMMEDIATE`` transaction per batch across every table that
names an event, then a ``wal_checkpoint(TRUNCATE)`` so the old page images in the WAL are gone
from disk too. The store's own connection also runs with ``secure_delete`` so the versions a
record had before an update (assignment, outcome) were zeroed when they were replaced.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.store.sqlite_audit import connect

_BATCH = 500
_CHECKPOINT_ATTEMPTS = 50
_INDEXES = (
    # the pseudonym index (records are found without a scan); an expression index, so the
    # record layout and the store's writes stay as they are
    "CREATE INDEX IF NOT EXISTS decisions_citizen "
    "ON decisions (json_extract(record, '$.citizen_key'))",
    "CREATE INDEX IF NOT EXISTS decisions_time ON decisions (timestamp)",
    "CREATE INDEX IF NOT EXISTS request_ids_event ON request_ids (event_id)",
    "CREATE INDEX IF NOT EXISTS learning_event ON learning (event_id)",
)
_EVENT_TABLES = ("protected", "request_ids", "learning", "dead_letters", "corrections")


@dataclass(frozen=True, slots=True)
class Erased:
    """Rows removed per kind."""

    records: int = 0
    protected: int = 0
    request_ids: int = 0
    queue_entries: int = 0

    def __add__(self, other: Erased) -> Erased:
        return Erased(
            self.records + other.records,
            self.protected + other.protected,
            self.request_ids + other.request_ids,
            self.queue_entries + other.queue_entries,
        )


class SQLiteEraser:
    """Erase records of one pseudonym, or older than a time, from a SQLite store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        for sql in _INDEXES:
            self._conn.execute(sql)

    def event_ids_of(self, pseudonym: str) -> list[str]:
        """Event ids of ``pseudonym``'s records (through the pseudonym index)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT event_id FROM decisions WHERE json_extract(record, '$.citizen_key') = ?",
                (pseudonym,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def erase_pseudonym(self, pseudonym: str) -> Erased:
        """Remove every row of ``pseudonym`` and checkpoint the WAL."""
        result = self._erase(self.event_ids_of(pseudonym))
        self.checkpoint()
        return result

    def purge_before(self, cutoff: float) -> Erased:
        """Remove every record decided before ``cutoff`` (Unix seconds), in batches."""
        total = Erased()
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT event_id FROM decisions WHERE timestamp < ? LIMIT ?", (cutoff, _BATCH)
                ).fetchall()
            if not rows:
                break
            total = total + self._erase([str(r[0]) for r in rows])
        if total.records:
            self.checkpoint()
        return total

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it (retried while readers block)."""
        for _ in range(_CHECKPOINT_ATTEMPTS):
            with self._lock:
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _erase(self, event_ids: Sequence[str]) -> Erased:
        total = Erased()
        for start in range(0, len(event_ids), _BATCH):
            total = total + self._erase_batch(event_ids[start : start + _BATCH])
        return total

    def _erase_batch(self, event_ids: Sequence[str]) -> Erased:
        if not event_ids:
            return Erased()
        marks = ",".join("?" * len(event_ids))
        counts: dict[str, int] = {}
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for table in (*_EVENT_TABLES, "decisions"):
                    cur.execute(f"DELETE FROM {table} WHERE event_id IN ({marks})", event_ids)  # noqa: S608 (fixed names)
                    counts[table] = cur.rowcount
            except (sqlite3.Error, BaseException):
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        return Erased(
            records=counts["decisions"],
            protected=counts["protected"],
            request_ids=counts["request_ids"],
            queue_entries=counts["learning"] + counts["dead_letters"] + counts["corrections"],
        )
