"""A background daemon thread that runs one job periodically (settlement sweep, model polling)."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

logger = logging.getLogger("nbi.periodic")


class PeriodicThread(ABC):
    """Calls :meth:`tick` every ``interval`` seconds on a daemon thread until :meth:`stop`.

    A failing tick is logged and retried at the next interval, so one bad poll never kills a
    replica. With ``first_tick_at_once`` the first tick runs as soon as the thread starts,
    otherwise after one interval.
    """

    def __init__(self, *, name: str, interval: float, first_tick_at_once: bool) -> None:
        self.thread_name = name
        self.interval = interval
        self.first_tick_at_once = first_tick_at_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def tick(self) -> object:
        """One run of the job."""

    def start(self) -> None:
        """Start the thread (idempotent while it runs)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        if not self.first_tick_at_once and self._stop.wait(self.interval):
            return
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 (retried at the next interval)
                logger.exception("%s failed; retrying in %.1f s", self.thread_name, self.interval)
            if self._stop.wait(self.interval):
                return
