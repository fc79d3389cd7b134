"""The audit trail in the store's SQLite file: table ``audit`` and its head row.

Own connection (WAL, ``synchronous=FULL``, busy timeout), so the trail works beside a running
service or from the ``nbi`` CLI. Triggers refuse ``UPDATE`` and ``DELETE`` on ``audit``: the
service can only append. Someone with the file can drop them; the hash chain
(:mod:`service.audit`) is what shows the change.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from service.audit import AuditEntry

_PAGE = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the store file with the store's pragmas (file created ``0600``)."""
    import contextlib
    import os

    for parent in reversed([path.parent, *path.parent.parents]):
        if not parent.exists():
            parent.mkdir(mode=0o700, exist_ok=True)
    # Created owner-only; an existing file is never opened outside SQLite: closing a plain
    # descriptor of it drops every POSIX lock this process holds on it (the store's own
    # connection's too), and another process closing its connection then deletes the WAL
    # while this one still writes to it (its writes become invisible, lost on restart).
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA secure_delete=ON")
    return conn


class SQLiteAuditLog:
    """:class:`service.audit.AuditLog` in a SQLite file (normally the store's own)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)

    def append(self, make: Callable[[int, str], AuditEntry]) -> AuditEntry:
        """Store ``make(next_seq, head_hash)`` and the new head in one transaction."""
        from service.audit import GENESIS

        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
                seq, prev = (0, GENESIS) if row is None else (int(row[0]), str(row[1]))
                entry = make(seq + 1, prev)
                cur.execute(
                    "INSERT INTO audit (seq, entry) VALUES (?, ?)", (entry.seq, entry.to_json())
                )
                cur.execute(
                    "INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, ?, ?)",
                    (entry.seq, entry.hash),
                )
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        return entry

    def stored(self) -> Iterator[str]:
        """Stored entries, oldest first, fetched in pages."""
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT seq, entry FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (last, _PAGE)
                ).fetchall()
            if not rows:
                return
            for seq, text in rows:
                last = int(seq)
                yield str(text)

    def head(self) -> tuple[int, str] | None:
        """The head row, or ``None`` before the first append."""
        with self._lock:
            row = self._conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
