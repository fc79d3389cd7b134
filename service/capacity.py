"""Seat capacity of the offers, counted from the caseworkers' assignments."""

from __future__ import annotations

import threading
from datetime import date

from bandit.catalog import Catalog


class CapacityTracker:
    """Seats taken per offer in the current ISO week, counted from assignments.

    Per process (each replica counts the assignments it handled); resets every week.

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> cat = default_catalog()
    >>> item = next(i for i in cat if i.capacity == 1)
    >>> cap = CapacityTracker(cat)
    >>> cap.seats_left()[item.id], (cap.take(item.id), cap.seats_left()[item.id])[1]
    (1, 0)
    """

    def __init__(self, catalog: Catalog) -> None:
        self._capacity = {i.id: i.capacity for i in catalog if i.capacity is not None}
        self._taken: dict[str, int] = {}
        self._left = dict(self._capacity)  # capacity - taken, kept current by take() and _roll()
        self._week = self._current_week()
        self._lock = threading.Lock()

    @staticmethod
    def _current_week() -> tuple[int, int]:
        iso = date.today().isocalendar()
        return iso.year, iso.week

    def _roll(self) -> None:
        week = self._current_week()
        if week != self._week:
            self._week, self._taken, self._left = week, {}, dict(self._capacity)

    def seats_left(self) -> dict[str, int]:
        """Free seats of every offer with a capacity (a copy: the caller may keep it)."""
        with self._lock:
            self._roll()
            return dict(self._left)

    def take(self, action_id: str) -> None:
        """Count one assignment to ``action_id``."""
        if action_id not in self._capacity:
            return
        with self._lock:
            self._roll()
            taken = self._taken.get(action_id, 0) + 1
            self._taken[action_id] = taken
            self._left[action_id] = self._capacity[action_id] - taken
