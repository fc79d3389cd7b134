"""Seat capacity of the offers, counted from the caseworkers' assignments in the shared store.

Every replica reads and counts seats in the store (:class:`SeatLedger`: the SQLite file or
Redis), so two workers give the same eligible set for the same request and the counts survive a
restart. Seats are counted per capacity week (:func:`bandit.catalog.capacity_week`); a new week
starts from the catalog's ``capacity``. An assignment is counted once per event, whatever the
retries. An assignment beyond capacity is accepted (the caseworker decides) and flagged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bandit.catalog import Catalog, capacity_week

if TYPE_CHECKING:
    from service.config import Settings

KEEP_WEEKS = 8
"""Weeks a counted assignment is remembered (a retry within them is not counted again)."""


def seat_token(event_id: str) -> str:
    """What the ledger keeps of an event id: a hash, enough to recognise a retry and no link
    to the record once it is erased.

    Examples
    --------
    >>> len(seat_token("e1")), seat_token("e1") == seat_token("e1")
    (32, True)
    """
    return hashlib.sha256(b"nbi-seat:" + event_id.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SeatTake:
    """One assignment's seat: its ordinal in the week's count and whether it counted now.

    ``ordinal`` is the number of seats taken once this assignment was counted (a replayed
    assignment gets the ordinal it was first counted with).
    """

    ordinal: int
    capacity: int
    new: bool

    @property
    def over(self) -> bool:
        """True when this assignment went beyond the offer's capacity."""
        return self.ordinal > self.capacity


class SeatLedger(Protocol):
    """Seats taken per offer and capacity week, in the shared store."""

    def taken(self, week: str) -> dict[str, int]:
        """Seats taken in ``week`` per offer id (offers with none taken may be missing)."""
        ...

    def take(self, event_id: str, action_id: str, week: str, capacity: int) -> SeatTake:
        """Count ``event_id``'s seat on ``action_id`` in ``week``, once per event (atomic)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class CapacityTracker:
    """Free seats of every offer with a capacity, from the shared :class:`SeatLedger`.

    Parameters
    ----------
    catalog
        Where the capacities come from.
    ledger
        The store's seat counts.
    clock
        Unix time now (tests move it across a week).

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> from service.store.sqlite_capacity import SQLiteSeatLedger
    >>> import tempfile, pathlib
    >>> cat = default_catalog()
    >>> item = next(i for i in cat if i.capacity == 1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     cap = CapacityTracker(cat, SQLiteSeatLedger(pathlib.Path(d) / "s.sqlite3"))
    ...     before = cap.seats_left()[item.id]
    ...     take = cap.take("e1", item.id)
    ...     again = cap.take("e1", item.id)
    ...     after = cap.seats_left()[item.id]
    ...     cap.close()
    >>> before, after, take.over, again.new, again.ordinal
    (1, 0, False, False, 1)
    """

    def __init__(
        self, catalog: Catalog, ledger: SeatLedger, clock: Callable[[], float] = time.time
    ) -> None:
        self._capacity = {i.id: i.capacity for i in catalog if i.capacity is not None}
        self._ledger = ledger
        self._clock = clock

    def week(self) -> str:
        """The current capacity week."""
        return capacity_week(self._clock())

    def seats_left(self) -> dict[str, int]:
        """Free seats of every offer with a capacity this week (negative when overbooked)."""
        left = dict(self._capacity)
        for k, n in self._ledger.taken(self.week()).items():  # only the offers with takes
            if k in left:
                left[k] -= n
        return left

    def take(self, event_id: str, action_id: str) -> SeatTake | None:
        """Count the assignment of ``event_id`` to ``action_id`` (``None``: no capacity)."""
        capacity = self._capacity.get(action_id)
        if capacity is None:
            return None
        return self._ledger.take(event_id, action_id, self.week(), capacity)

    def close(self) -> None:
        """Close the ledger."""
        self._ledger.close()


def open_seat_ledger(settings: Settings) -> SeatLedger:
    """The seat ledger of the configured store (same SQLite file, or same Redis and prefix)."""
    if settings.store == "redis":
        from service.store.redis_capacity import RedisSeatLedger

        return RedisSeatLedger(settings.redis_url, prefix=settings.redis_prefix)
    from service.store.sqlite_capacity import SQLiteSeatLedger

    return SQLiteSeatLedger(settings.sqlite_path)
