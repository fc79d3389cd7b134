"""Is the store durable? Redis must run with AOF and ``appendfsync always``.

The store contract says a write is durable when the method returns. The SQLite store makes it
so itself (WAL, ``synchronous=FULL``); the Redis store relies on the server's configuration:
``appendonly yes`` and ``appendfsync always`` (``docker-compose.yml``). Nothing checked it: a
Redis without AOF acknowledges decisions and outcomes that a restart loses.

:class:`PersistenceCheck` asks the server (``CONFIG GET``, or ``INFO persistence`` where
``CONFIG`` is disabled, as on managed Redis: then the fsync policy cannot be verified and the
store counts as not durable), at start-up and then at most every ``max_age`` seconds. The result
is the gauge ``nbi_store_durable`` (1/0, alert ``NbiStorePersistenceOff``) and the readiness
check ``persistence``; in ``prod`` a store that is not durable makes ``/readyz`` fail.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from service.redis.client import as_text

logger = logging.getLogger("nbi.persistence")

REQUIRED_FSYNC = "always"


@dataclass(frozen=True, slots=True)
class Durability:
    """What the store's server says about persistence."""

    durable: bool
    detail: str


def durability(store: Any) -> Durability | None:
    """The durability of ``store``; ``None`` when it cannot be asked right now (down).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from service.store.sqlite_store import SQLiteStore
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = SQLiteStore(pathlib.Path(d) / "x.sqlite3")
    ...     print(durability(store))
    ...     store.close()
    Durability(durable=True, detail='sqlite: WAL with synchronous=FULL')
    """
    client = getattr(store, "client", None)
    if client is None:
        return Durability(True, "sqlite: WAL with synchronous=FULL")
    return _redis_durability(client)


def _redis_durability(client: Any) -> Durability | None:
    import redis

    try:
        try:
            config = client.config_get("append*")
        except redis.exceptions.ResponseError:  # CONFIG disabled or renamed
            info = client.info("persistence")
            if int(info.get("aof_enabled", 0)) != 1:
                return Durability(False, "redis: appendonly is off")
            return Durability(False, "redis: AOF on, appendfsync unknown (CONFIG disabled)")
    except redis.exceptions.RedisError:
        return None
    aof = as_text(config.get("appendonly", b"no")) == "yes"
    fsync = as_text(config.get("appendfsync", b""))
    if not aof:
        return Durability(False, "redis: appendonly is off")
    if fsync != REQUIRED_FSYNC:
        return Durability(False, f"redis: appendfsync is {fsync}, not {REQUIRED_FSYNC}")
    return Durability(True, "redis: appendonly yes, appendfsync always")


class PersistenceCheck:
    """The store's durability, asked at most every ``max_age`` seconds, into a gauge.

    Parameters
    ----------
    store
        The decision store.
    gauge
        ``nbi_store_durable`` (set to 1 or 0; left alone while the store cannot be asked).
    max_age
        Seconds a result is reused (``/metrics`` and ``/readyz`` call :meth:`current`).
    """

    def __init__(self, store: Any, gauge: Any, *, max_age: float = 30.0) -> None:
        self.store = store
        self.gauge = gauge
        self.max_age = max_age
        self._lock = threading.Lock()
        self._last: Durability | None = None
        self._checked_at = -float("inf")

    def current(self) -> Durability | None:
        """The latest known durability (asks the store if the last answer is too old)."""
        with self._lock:
            if time.monotonic() - self._checked_at < self.max_age:
                return self._last
            self._checked_at = time.monotonic()
        found = durability(self.store)
        if found is not None:
            self.gauge.set(1 if found.durable else 0)
            if not found.durable and (self._last is None or self._last.durable):
                logger.warning("the store is not durable", extra={"detail": found.detail})
            with self._lock:
                self._last = found
        return found if found is not None else self._last
