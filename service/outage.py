"""Store outages: recognise them, answer fast while they last, notice when they end.

Without this a Redis outage made every request wait through the client's retries (about 5 s)
and then answer a 500, ``/metrics`` included. Now:

- :func:`is_store_outage` tells an outage (connection refused or lost, a timeout) from every
  other error; the error handlers (``service/errors.py``) answer it with a 503 problem and
  ``Retry-After`` and trip the :class:`StoreBreaker`.
- While the breaker is open, the admission middleware (``service/admission.py``) answers
  every ``/v1`` request at once with that 503, without reading its body; ``/metrics`` skips
  its store reads (the last values stay) and ``/readyz`` reports the store as failing.
- A daemon thread probes the store with one short, unretried ping every ``probe_interval``
  seconds and closes the breaker when it answers. Nothing was written for the refused
  requests, so nothing acknowledged is lost: the case system retries after ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

logger = logging.getLogger("nbi.outage")


def outage_errors() -> tuple[type[Exception], ...]:
    """The exception classes that mean "the store cannot be reached" (not a bad command).

    Examples
    --------
    >>> import redis
    >>> redis.exceptions.ConnectionError in outage_errors()
    True
    """
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def is_store_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) says the store is unreachable.

    Examples
    --------
    >>> import redis
    >>> is_store_outage(redis.exceptions.ConnectionError("refused"))
    True
    >>> is_store_outage(ValueError("bad"))
    False
    """
    errors = outage_errors()
    seen: BaseException | None = exc
    for _ in range(4):  # the error itself and a few links of its chain
        if seen is None:
            return False
        if isinstance(seen, errors):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class StoreBreaker:
    """Open while the store is unreachable; a probe thread closes it when the store answers.

    Parameters
    ----------
    probe
        One cheap, unretried check of the store (``True`` when it answers).
    retry_after
        Seconds clients are told to wait (``Retry-After``) while the breaker is open.
    probe_interval
        Seconds between probes while open.
    gauge
        ``nbi_store_up`` (1 closed, 0 open), if metrics are kept.

    Examples
    --------
    >>> answers = iter([False, True])
    >>> breaker = StoreBreaker(lambda: next(answers), probe_interval=0.01)
    >>> breaker.is_open()
    False
    >>> breaker.trip()
    >>> breaker.is_open()
    True
    >>> breaker.wait_closed(2.0)
    True
    >>> breaker.stop()
    """

    def __init__(
        self,
        probe: Callable[[], bool],
        *,
        retry_after: float = 2.0,
        probe_interval: float = 0.5,
        gauge: Gauge | None = None,
    ) -> None:
        self.probe = probe
        self.retry_after = retry_after
        self.probe_interval = probe_interval
        self.gauge = gauge
        self._open = False
        self._opened_at = 0.0
        self._lock = threading.Lock()
        self._probing = threading.Lock()
        self._last_probe = 0.0
        self._closed = threading.Event()
        self._closed.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if gauge is not None:
            gauge.set(1)

    def is_open(self) -> bool:
        """True while the store is known to be unreachable (a plain attribute read)."""
        return self._open

    def recheck(self, min_gap: float = 0.05) -> bool:
        """Half-open check on a request's behalf: probe now (one caller at a time, at most
        every ``min_gap`` seconds) and close the breaker if the store answers; True if closed.

        Blocking (one unretried ping): call it off the event loop.
        """
        if not self._open:
            return True
        if not self._probing.acquire(blocking=False):
            return False  # another request is probing right now
        try:
            now = time.monotonic()
            if now - self._last_probe < min_gap:
                return not self._open
            self._last_probe = now
            if self._safe_probe():
                self._close()
            return not self._open
        finally:
            self._probing.release()

    def retry_after_header(self) -> str:
        """``Retry-After`` value (whole seconds, at least 1)."""
        return str(max(1, round(self.retry_after)))

    def trip(self) -> None:
        """Open the breaker (idempotent) and start probing."""
        with self._lock:
            if self._open or self._stop.is_set():
                return
            self._open = True
            self._opened_at = time.monotonic()
            self._closed.clear()
            if self.gauge is not None:
                self.gauge.set(0)
            logger.warning("store unreachable: answering 503 until it is back")
            self._thread = threading.Thread(target=self._probe_loop, name="nbi-store-probe")
            self._thread.daemon = True
            self._thread.start()

    def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the breaker to close; True if it is closed."""
        return self._closed.wait(timeout)

    def stop(self) -> None:
        """Stop probing (at shutdown)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.probe_interval + 5.0)

    def _safe_probe(self) -> bool:
        try:
            return bool(self.probe())
        except Exception:  # noqa: BLE001 (a failing probe means still down)
            return False

    def _close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._closed.set()
            if self.gauge is not None:
                self.gauge.set(1)
        logger.warning("store reachable again after %.1f s", time.monotonic() - self._opened_at)

    def _probe_loop(self) -> None:
        while self._open and not self._stop.wait(self.probe_interval):
            with self._probing:
                self._last_probe = time.monotonic()
                answered = self._safe_probe()
            if answered:
                self._close()
                return


def store_probe(store: object, timeout: float = 0.5) -> Callable[[], bool]:
    """A one-shot check of ``store``: for Redis a single ``PING`` on its own connection, with
    a short timeout and no retries (the store's client retries for seconds); else its ping.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from service.store.sqlite_store import SQLiteStore
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = SQLiteStore(pathlib.Path(d) / "x.sqlite3")
    ...     print(store_probe(store)())
    ...     store.close()
    True
    """
    client = getattr(store, "client", None)
    ping: Callable[[], bool] = getattr(store, "ping")  # noqa: B009 (any store)
    if client is None:
        return ping
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    source = client.connection_pool
    kwargs = dict(source.connection_kwargs)
    kwargs.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
    )
    pool = redis.ConnectionPool(
        connection_class=source.connection_class, max_connections=2, **kwargs
    )
    probe_client = redis.Redis(connection_pool=pool)

    def probe() -> bool:
        try:
            return bool(probe_client.ping())
        except redis.exceptions.RedisError:
            return False

    return probe
