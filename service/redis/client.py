"""Creation of the Redis client pool with bounded exponential-backoff retries.

Only :class:`redis.exceptions.ConnectionError` and :class:`redis.exceptions.TimeoutError` are
retried (never the builtin ``ConnectionError``, never command errors). Every write of the store
is idempotent (Lua scripts check before writing), so a retry after a lost reply is safe.
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

RETRIED_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
"""The only errors the client retries."""


def as_text(value: bytes | str) -> str:
    """A Redis reply value as text (replies are bytes unless the client decodes them).

    Examples
    --------
    >>> as_text(b"yes"), as_text("no")
    ('yes', 'no')
    """
    return value.decode() if isinstance(value, bytes) else str(value)


def make_retry(retries: int = 4, *, base: float = 0.05, cap: float = 0.5) -> Retry:
    """A :class:`~redis.retry.Retry` with exponential backoff on connection/timeout errors only.

    Examples
    --------
    >>> make_retry(3).get_retries()
    3
    """
    return Retry(ExponentialBackoff(cap=cap, base=base), retries, supported_errors=RETRIED_ERRORS)


def make_client(
    url: str,
    *,
    retries: int = 4,
    socket_timeout: float = 5.0,
    max_connections: int = 64,
) -> redis.Redis:
    """A thread-safe Redis client backed by one connection pool.

    Parameters
    ----------
    url
        ``redis://host:port/db`` URL.
    retries
        Retries of a command on connection or timeout errors (exponential backoff 0.1, 0.2,
        0.4, 0.5 s: a blip of about a second is ridden out; a longer outage trips the
        service's breaker, ``service/outage.py``, which then answers 503 at once).
    socket_timeout
        Seconds before a socket read/write times out (blocking reads add their block time).
    max_connections
        Size cap of the pool (one connection per concurrent thread).

    Examples
    --------
    >>> client = make_client("redis://127.0.0.1:1/0")  # connects lazily, nothing happens yet
    >>> client.connection_pool.max_connections
    64
    >>> client.close()
    """
    pool = redis.ConnectionPool.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=make_retry(retries),
        retry_on_error=list(RETRIED_ERRORS),
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)
