"""The fenced single-writer lease of the SQLite store (several processes share one file).

One row per lease: its holder, when the holding lapses (wall-clock Unix seconds, shared by the
processes on the host) and a fencing token that grows with every new holding and is never
reset. The store's commit of learned messages checks the token in the same ``BEGIN IMMEDIATE``
transaction that writes the snapshot and deletes the messages, so a holder paused past its
lease cannot publish or acknowledge anything once another worker took over.

Examples
--------
>>> import sqlite3
>>> cur = sqlite3.connect(":memory:").cursor()
>>> cur.executescript(LEASE_SCHEMA) and None
>>> acquire(cur, "learner", "a", 1000, now=0.0), acquire(cur, "learner", "b", 1000, now=0.5)
(1, 0)
>>> acquire(cur, "learner", "a", 1000, now=0.9), is_current(cur, "learner", 1)
(1, True)
>>> acquire(cur, "learner", "b", 1000, now=2.0), is_current(cur, "learner", 1)
(2, False)
"""

from __future__ import annotations

import sqlite3

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT,
    expires REAL NOT NULL DEFAULT 0,
    token INTEGER NOT NULL DEFAULT 0
);
"""


def acquire(cur: sqlite3.Cursor, name: str, owner: str, ttl_ms: int, *, now: float) -> int:
    """Renew ``owner``'s live holding or take a free/lapsed lease; its token, 0 if held.

    Run inside a write transaction.
    """
    row = cur.execute("SELECT owner, expires, token FROM leases WHERE name = ?", (name,)).fetchone()
    expires = now + ttl_ms / 1000
    if row is not None and row[1] > now:
        if row[0] != owner:
            return 0
        cur.execute("UPDATE leases SET expires = ? WHERE name = ?", (expires, name))
        return int(row[2])
    token = (0 if row is None else int(row[2])) + 1
    cur.execute(
        "INSERT OR REPLACE INTO leases (name, owner, expires, token) VALUES (?, ?, ?, ?)",
        (name, owner, expires, token),
    )
    return token


def release(cur: sqlite3.Cursor, name: str, owner: str) -> None:
    """Let the lease lapse now if ``owner`` holds it (the token stays)."""
    cur.execute(
        "UPDATE leases SET owner = NULL, expires = 0 WHERE name = ? AND owner = ?", (name, owner)
    )


def is_current(cur: sqlite3.Cursor, name: str, token: int) -> bool:
    """Whether ``token`` is the newest holding of lease ``name``."""
    row = cur.execute("SELECT token FROM leases WHERE name = ?", (name,)).fetchone()
    return row is not None and int(row[0]) == token
