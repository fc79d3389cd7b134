"""The audit trail in Redis: a list ``<prefix>audit`` and its head ``<prefix>audit:head``.

An append reads the head under ``WATCH`` and pushes the entry and the new head in one
``MULTI``; a concurrent append (another replica) makes it retry, so the chain stays linear.
With ``appendfsync always`` an acknowledged entry is on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import redis

from service.audit import GENESIS, AuditEntry
from service.redis.client import as_text, make_client

_PAGE = 1000
_ATTEMPTS = 100


class RedisAuditLog:
    """:class:`service.audit.AuditLog` in Redis."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "nbi:",
        client: redis.Redis | None = None,
    ) -> None:
        self.client = client if client is not None else make_client(url)
        self.list_key = f"{prefix}audit"
        self.head_key = f"{prefix}audit:head"

    def append(self, make: Callable[[int, str], AuditEntry]) -> AuditEntry:
        """Push ``make(next_seq, head_hash)`` and move the head, atomically."""
        for _ in range(_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.head_key)  # type: ignore[no-untyped-call]
                    raw: Any = pipe.get(self.head_key)
                    seq, prev = (0, GENESIS) if raw is None else _parse_head(as_text(raw))
                    entry = make(seq + 1, prev)
                    pipe.multi()
                    pipe.rpush(self.list_key, entry.to_json())
                    pipe.set(self.head_key, f"{entry.seq} {entry.hash}")
                    pipe.execute()
                except redis.WatchError:
                    continue
                return entry
        msg = "Too much contention on the audit trail"
        raise RuntimeError(msg)

    def stored(self) -> Iterator[str]:
        """Stored entries, oldest first, fetched in pages."""
        start = 0
        while True:
            page: Any = self.client.lrange(self.list_key, start, start + _PAGE - 1)
            if not page:
                return
            for text in page:
                yield as_text(text)
            start += len(page)

    def head(self) -> tuple[int, str] | None:
        """The head, or ``None`` before the first append."""
        raw: Any = self.client.get(self.head_key)
        return None if raw is None else _parse_head(as_text(raw))

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()


def _parse_head(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(" ")
    return int(seq), digest
