"""Erasure and retention in the Redis store: by pseudonym (its set) or by age (a sorted set).

Each event goes in one Lua script (:data:`service.redis.scripts.ERASE_EVENT`): the record,
its protected attributes, its request-id key, its entries in the events and learning streams
(their ids are kept on the record), the indexes, the pseudonym's set, and the arm's counters
(so ``/v1/experiment/summary`` agrees with the remaining records). Entries naming the event
in the small corrections and dead-letter streams are found by reading those streams.

With AOF on, :meth:`RedisEraser.rewrite_aof` rewrites the append-only file afterwards, so the
commands that once wrote the erased data are gone from disk as well.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from service.redis.client import as_text
from service.redis.keys import LEARNING_GROUP
from service.redis.scripts import ERASE_EVENT
from service.store.redis_store import RedisStore
from service.store.sqlite_erasure import Erased

_BATCH = 500
_STREAM_PAGE = 1000


class RedisEraser:
    """Erase one pseudonym's events, or events older than a time, from a Redis store."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.client = store.client
        self.keys = store.keys
        self._erase = self.client.register_script(ERASE_EVENT)

    def event_ids_of(self, pseudonym: str) -> list[str]:
        """Event ids of ``pseudonym`` (members of its set)."""
        members: Any = self.client.smembers(self.keys.citizen(pseudonym))
        return sorted(as_text(m) for m in members)

    def erase_pseudonym(self, pseudonym: str) -> Erased:
        """Remove every event of ``pseudonym`` and its set."""
        result = self._erase_events(self.event_ids_of(pseudonym))
        self.client.delete(self.keys.citizen(pseudonym))
        return result

    def purge_before(self, cutoff: float) -> Erased:
        """Remove every event decided before ``cutoff`` (Unix seconds), in batches."""
        total = Erased()
        while True:
            ids: Any = self.client.zrangebyscore(
                self.keys.record_times, "-inf", f"({cutoff!r}", start=0, num=_BATCH
            )
            if not ids:
                return total
            total = total + self._erase_events([as_text(i) for i in ids])

    def rewrite_aof(self, timeout: float = 120.0) -> bool:
        """Rewrite the AOF (when enabled) and wait until the rewrite is done; ``False`` when AOF
        is off or the rewrite did not finish in ``timeout`` seconds."""
        info: Any = self.client.info("persistence")
        if not int(info.get("aof_enabled", 0)):
            return False
        deadline = time.monotonic() + timeout
        while int(self.client.info("persistence").get("aof_rewrite_in_progress", 0)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        self.client.bgrewriteaof()
        while time.monotonic() < deadline:
            now: Any = self.client.info("persistence")
            busy = int(now.get("aof_rewrite_in_progress", 0)) or int(
                now.get("aof_rewrite_scheduled", 0)
            )
            if not busy:
                return str(now.get("aof_last_bgrewrite_status", "ok")) == "ok"
            time.sleep(0.05)
        return False

    def _erase_events(self, event_ids: list[str]) -> Erased:
        if not event_ids:
            return Erased()
        k = self.keys
        records = protected = request_ids = queue = 0
        for event_id in event_ids:
            reply: Any = self._erase(
                keys=[
                    k.record(event_id),
                    k.protected(event_id),
                    k.record_index,
                    k.pending,
                    k.record_times,
                    k.events_stream,
                    k.learning_stream,
                    k.group_counts("treatment"),
                    k.group_counts("control"),
                ],
                args=[event_id, LEARNING_GROUP, k.citizen("")],
            )
            records += int(reply[0])
            protected += int(reply[1])
            request_ids += int(reply[2])
            queue += int(reply[3])
        queue += self._drop_stream_entries(k.corrections_stream, set(event_ids))
        queue += self._drop_stream_entries(k.dead_letter_stream, set(event_ids))
        return Erased(records, protected, request_ids, queue)

    def _drop_stream_entries(self, stream: str, event_ids: Iterable[str]) -> int:
        """Delete the entries of a small stream whose ``event_id`` is one of ``event_ids``."""
        wanted = set(event_ids)
        dropped = 0
        start = "-"
        while True:
            page: Any = self.client.xrange(stream, start, "+", count=_STREAM_PAGE)
            if not page:
                return dropped
            hits = [
                as_text(entry_id)
                for entry_id, fields in page
                if as_text(fields.get(b"event_id", fields.get("event_id", b""))) in wanted
            ]
            if hits:
                dropped += int(self.client.xdel(stream, *hits))
            if len(page) < _STREAM_PAGE:
                return dropped
            start = "(" + as_text(page[-1][0])
