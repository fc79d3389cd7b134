"""Seat counts in Redis: a hash per capacity week ``<prefix>seats:<week>`` (offer id -> seats
taken) and one key per counted assignment ``<prefix>seat:<token>`` (its ordinal).

Counting one assignment is one Lua script: a retry of an assignment already counted returns its
ordinal; otherwise ``HINCRBY`` the offer's count of the week, check it against the capacity
and remember the ordinal; atomic across workers, and with AOF on it survives a restart. Both
keys expire :data:`service.capacity.KEEP_WEEKS` weeks after their last write.
"""

from __future__ import annotations

from typing import Any

import redis

from service.capacity import KEEP_WEEKS, SeatTake, seat_token
from service.redis.client import as_text, make_client

TAKE_SEAT = """
-- KEYS: the week's seat hash, the assignment's seat key
-- ARGV: action_id, capacity, ttl seconds
-- Reply: {new (1/0), ordinal, over (1/0)}
local prior = redis.call('GET', KEYS[2])
if prior then
  local n = tonumber(prior)
  return {0, n, n > tonumber(ARGV[2]) and 1 or 0}
end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], n, 'EX', ARGV[3])
return {1, n, n > tonumber(ARGV[2]) and 1 or 0}
"""

_TTL_SECONDS = KEEP_WEEKS * 7 * 86400


class RedisSeatLedger:
    """:class:`service.capacity.SeatLedger` in Redis."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "nbi:",
        client: redis.Redis | None = None,
    ) -> None:
        self.client = client if client is not None else make_client(url)
        self.prefix = prefix
        self._take = self.client.register_script(TAKE_SEAT)

    def _week_key(self, week: str) -> str:
        return f"{self.prefix}seats:{week}"

    def taken(self, week: str) -> dict[str, int]:
        """Seats taken in ``week`` per offer id (one ``HGETALL``)."""
        raw: Any = self.client.hgetall(self._week_key(week))
        return {as_text(k): int(v) for k, v in raw.items()}

    def take(self, event_id: str, action_id: str, week: str, capacity: int) -> SeatTake:
        """Count the seat of ``event_id`` once (one script)."""
        keys = [self._week_key(week), f"{self.prefix}seat:{seat_token(event_id)}"]
        new, ordinal, _over = self._take(keys=keys, args=[action_id, capacity, _TTL_SECONDS])
        return SeatTake(int(ordinal), capacity, new=bool(int(new)))

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()
