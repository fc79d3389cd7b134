"""Build the configured decision store (embedded SQLite or Redis)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from service.config import Settings
    from service.store.base import DecisionStore


def make_store(settings: Settings) -> DecisionStore:
    """The store named by ``settings.store``; Redis is imported only when configured.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from service.config import Settings
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = make_store(Settings(sqlite_path=pathlib.Path(d) / "x.sqlite3"))
    ...     print(type(store).__name__, store.ping())
    ...     store.close()
    SQLiteStore True
    """
    if settings.store == "redis":
        module = importlib.import_module("service.store.redis_store")
        return cast(
            "DecisionStore",
            module.RedisStore(
                settings.redis_url,
                prefix=settings.redis_prefix,
                idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
                keep_models=settings.model_keep,
            ),
        )
    from service.store.sqlite_store import SQLiteStore

    store: DecisionStore = SQLiteStore(
        settings.sqlite_path,
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        keep_models=settings.model_keep,
    )
    return store
