"""Seat counts in the store's SQLite file: tables ``seat_counts`` and ``seat_takes``.

Own connection (the store's pragmas), like the audit trail. Counting one assignment is one
``BEGIN IMMEDIATE`` transaction: look the assignment up, add one to the week's count of the
offer, remember the assignment with its ordinal; so concurrent workers (processes) never count
the same seat twice nor lose one, and the counts survive a restart.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from service.capacity import KEEP_WEEKS, SeatTake, seat_token
from service.store.sqlite_audit import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seat_counts (
    week TEXT NOT NULL,
    action_id TEXT NOT NULL,
    taken INTEGER NOT NULL,
    PRIMARY KEY (week, action_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seat_takes (
    seat_token TEXT PRIMARY KEY,
    week TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    taken_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seat_takes_time ON seat_takes (taken_at);
"""


_KEEP_SECONDS = KEEP_WEEKS * 7 * 86400.0


def _weeks_before(week: str) -> str:
    """The capacity week :data:`KEEP_WEEKS` before ``week`` (``YYYY-Www`` compare as text).

    Examples
    --------
    >>> _weeks_before("2026-W10")
    '2026-W02'
    """
    monday = datetime.strptime(f"{week}-1", "%G-W%V-%u")
    iso = (monday - timedelta(weeks=KEEP_WEEKS)).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


class SQLiteSeatLedger:
    """:class:`service.capacity.SeatLedger` in a SQLite file (normally the store's own)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)

    def taken(self, week: str) -> dict[str, int]:
        """Seats taken in ``week`` per offer id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT action_id, taken FROM seat_counts WHERE week = ?", (week,)
            ).fetchall()
        return {str(a): int(n) for a, n in rows}

    def take(self, event_id: str, action_id: str, week: str, capacity: int) -> SeatTake:
        """Count the seat of ``event_id`` once, in one transaction."""
        token = seat_token(event_id)
        now = time.time()
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute(
                    "SELECT ordinal FROM seat_takes WHERE seat_token = ?", (token,)
                ).fetchone()
                if row is not None:
                    cur.execute("COMMIT")
                    return SeatTake(int(row[0]), capacity, new=False)
                (ordinal,) = cur.execute(
                    "INSERT INTO seat_counts (week, action_id, taken) VALUES (?, ?, 1) "
                    "ON CONFLICT (week, action_id) DO UPDATE SET taken = taken + 1 "
                    "RETURNING taken",
                    (week, action_id),
                ).fetchone()
                cur.execute(
                    "INSERT INTO seat_takes (seat_token, week, ordinal, taken_at) "
                    "VALUES (?, ?, ?, ?)",
                    (token, week, int(ordinal), now),
                )
                # retention: a retry older than KEEP_WEEKS is not expected; old weeks are done
                cur.execute("DELETE FROM seat_takes WHERE taken_at < ?", (now - _KEEP_SECONDS,))
                cur.execute("DELETE FROM seat_counts WHERE week < ?", (_weeks_before(week),))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return SeatTake(int(ordinal), capacity, new=True)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
