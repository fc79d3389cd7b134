"""The learning stream: consumer group reads, acknowledgement, re-delivery and dead letters.

* ``XREADGROUP ... >`` hands each new message to one consumer;
* a consumer first re-reads its own pending entries (``XREADGROUP ... 0``) after a restart;
* ``XAUTOCLAIM`` takes over entries idle too long at a dead consumer;
* ``XACK`` (plus ``XDEL``, so the stream holds only unacknowledged work) only after learning;
* messages delivered more than ``max_deliveries`` times go to a dead-letter stream;
* group creation tolerates ``BUSYGROUP`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import ResponseError

from service.redis.client import as_text
from service.redis.keys import LEARNING_GROUP, RedisKeys
from service.store.base import LearningMessage

DEAD_LETTER_MAXLEN = 100_000


def ensure_group(client: redis.Redis, stream: str, group: str = LEARNING_GROUP) -> bool:
    """Create the consumer group (and the stream); return ``False`` if it already existed.

    Only the ``BUSYGROUP`` reply is tolerated; any other error propagates.
    """
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if str(exc).startswith("BUSYGROUP"):
            return False
        raise
    return True


@dataclass
class LearningStream:
    """Consumer-group access to the learning stream of one store.

    Parameters
    ----------
    client
        Redis client (its pool is shared with the store).
    keys
        Key names.
    claim_idle_ms
        Entries pending longer than this at another consumer are claimed (``XAUTOCLAIM``).
    """

    client: redis.Redis
    keys: RedisKeys
    claim_idle_ms: int = 60_000
    _group_ready: bool = field(default=False, init=False)
    _history_cursor: dict[str, str] = field(default_factory=dict, init=False)

    @property
    def stream(self) -> str:
        """Name of the learning stream."""
        return self.keys.learning_stream

    def ensure_group(self) -> None:
        """Create the consumer group once per instance."""
        if not self._group_ready:
            ensure_group(self.client, self.stream)
            self._group_ready = True

    def read(self, consumer: str, count: int, block_ms: int = 0) -> list[LearningMessage]:
        """Own unacknowledged history first (once), then idle claims, then new messages."""
        self.ensure_group()
        out = self._read_history(consumer, count)
        if len(out) < count:
            out += self._claim_idle(consumer, count - len(out))
        if len(out) < count:
            block = block_ms if (block_ms > 0 and not out) else None
            reply: Any = self.client.xreadgroup(
                LEARNING_GROUP, consumer, {self.stream: ">"}, count=count - len(out), block=block
            )
            out += [m for m in self._messages(reply, consumer, fresh=True) if m is not None]
        return out

    def reread_history(self, consumer: str) -> None:
        """The next :meth:`read` of ``consumer`` starts again with its own pending entries."""
        self._history_cursor.pop(consumer, None)

    def ack(self, message_ids: Sequence[str]) -> None:
        """Acknowledge and delete messages in one transaction (no-op for an empty list)."""
        if not message_ids:
            return
        pipe = self.client.pipeline(transaction=True)
        self.queue_ack(pipe, message_ids)
        pipe.execute()

    def queue_ack(self, pipe: redis.client.Pipeline, message_ids: Sequence[str]) -> None:
        """Add the ``XACK`` + ``XDEL`` of ``message_ids`` to a pipeline."""
        pipe.xack(self.stream, LEARNING_GROUP, *message_ids)
        pipe.xdel(self.stream, *message_ids)

    def dead_letter(self, message: LearningMessage, error: str) -> None:
        """Copy the message to the dead-letter stream and acknowledge it, atomically."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(
            self.keys.dead_letter_stream,
            {
                "message_id": message.message_id,
                "event_id": message.event_id,
                "deliveries": message.deliveries,
                "error": error[:500],
            },
            maxlen=DEAD_LETTER_MAXLEN,
            approximate=True,
        )
        self.queue_ack(pipe, [message.message_id])
        pipe.execute()

    def lag(self) -> int:
        """Unacknowledged messages (acknowledged ones are deleted, so this is ``XLEN``)."""
        return int(self.client.xlen(self.stream))

    def dead_letters(self) -> list[dict[str, str]]:
        """Entries of the dead-letter stream (oldest first), for operators and tests."""
        entries: Any = self.client.xrange(self.keys.dead_letter_stream)
        return [{as_text(k): as_text(v) for k, v in fields.items()} for _, fields in entries]

    # ------------------------------------------------------------------ internals

    def _read_history(self, consumer: str, count: int) -> list[LearningMessage]:
        cursor = self._history_cursor.get(consumer, "0")
        if cursor == "done":
            return []
        reply: Any = self.client.xreadgroup(
            LEARNING_GROUP, consumer, {self.stream: cursor}, count=count
        )
        entries = reply[0][1] if reply else []
        if len(entries) < count:
            self._history_cursor[consumer] = "done"
        elif entries:
            self._history_cursor[consumer] = as_text(entries[-1][0])
        return [m for m in self._messages(reply, consumer, fresh=False) if m is not None]

    def _claim_idle(self, consumer: str, count: int) -> list[LearningMessage]:
        reply: Any = self.client.xautoclaim(
            self.stream, LEARNING_GROUP, consumer, self.claim_idle_ms, "0-0", count=count
        )
        entries = reply[1] if len(reply) > 1 else []
        wrapped = [[self.stream, entries]] if entries else []
        return [m for m in self._messages(wrapped, consumer, fresh=False) if m is not None]

    def _messages(self, reply: Any, consumer: str, *, fresh: bool) -> list[LearningMessage | None]:
        entries = reply[0][1] if reply else []
        out: list[LearningMessage | None] = []
        stale: list[str] = []
        for raw_id, fields in entries:
            message_id = as_text(raw_id)
            if not fields:  # deleted while pending
                stale.append(message_id)
                continue
            event_id = as_text(fields.get(b"event_id") or fields.get("event_id") or b"")
            kind = as_text(fields.get(b"kind") or fields.get("kind") or b"outcome")
            deliveries = 1 if fresh else self._deliveries(message_id)
            out.append(LearningMessage(message_id, event_id, deliveries, kind))
        if stale:
            self.client.xack(self.stream, LEARNING_GROUP, *stale)
        return out

    def _deliveries(self, message_id: str) -> int:
        info: Any = self.client.xpending_range(
            self.stream, LEARNING_GROUP, min=message_id, max=message_id, count=1
        )
        return int(info[0]["times_delivered"]) if info else 1
