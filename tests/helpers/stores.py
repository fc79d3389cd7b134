"""Shared names of the store fixtures (``tests/service/conftest.py``) for test modules."""

from __future__ import annotations

from collections.abc import Callable

from service.store.base import DecisionStore

StoreFactory = Callable[[], DecisionStore]
"""Makes a new store instance over the same backend (another process or replica)."""

CLAIM_IDLE_SECONDS = 0.2
"""Idle time after which the test stores re-deliver unacknowledged learning messages."""
