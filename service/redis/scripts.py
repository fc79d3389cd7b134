"""Lua scripts that make each store write one atomic, idempotent step.

Each script checks before it writes, so running it twice (a client retry after a lost reply)
changes nothing the second time. Keys are passed in ``KEYS``; the only keys built inside a
script are old model snapshots being trimmed (same prefix, single-instance deployments; a
Redis Cluster deployment would need hash tags).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.commands.core import Script

PUT_DECISION = """
-- KEYS: rec, idem, index, seq, pending, counts, events, protected, citizen, record_times
-- ARGV: event_id, json, horizon_at, has_request, protected_json, events_maxlen, idem_ttl,
--       fingerprint ('' = none), decision timestamp (the record's own; passed so that the
--       script never decodes the record). The request-id key holds "event_id fingerprint".
-- Reply: {1, id} stored, {0, id} replay, {-1, id} event exists with other content,
--        {-2, id} request id reused with another body.
if ARGV[4] == '1' then
  local prior = redis.call('GET', KEYS[2])
  if prior then
    local sep = string.find(prior, ' ', 1, true)
    if not sep then return {0, prior} end
    local prior_id = string.sub(prior, 1, sep - 1)
    if ARGV[8] ~= '' and string.sub(prior, sep + 1) ~= ARGV[8] then return {-2, prior_id} end
    return {0, prior_id}
  end
end
local current = redis.call('HGET', KEYS[1], 'json')
if current then
  if current == ARGV[2] then return {0, ARGV[1]} end
  return {-1, ARGV[1]}
end
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
-- erasure indexes (service/store/redis_erasure.py): the pseudonym's set, decision times, the
-- request-id key and the stream entries that name this event
redis.call('SADD', KEYS[9], ARGV[1])
redis.call('ZADD', KEYS[10], ARGV[9], ARGV[1])
redis.call('HINCRBY', KEYS[6], 'decisions', 1)
if ARGV[5] ~= '' then redis.call('SET', KEYS[8], ARGV[5]) end
local sid = redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[6], '*', 'kind', 'decision',
  'event_id', ARGV[1])
-- the record's fields in one HSET (the script is atomic: no reader sees it half written)
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'json', ARGV[2], 'seq', seq, 'ev', sid, 'idem', KEYS[2])
else
  redis.call('HSET', KEYS[1], 'json', ARGV[2], 'seq', seq, 'ev', sid)
end
if ARGV[4] == '1' then
  local value = ARGV[1]
  if ARGV[8] ~= '' then value = value .. ' ' .. ARGV[8] end
  if tonumber(ARGV[7]) > 0 then
    redis.call('SET', KEYS[2], value, 'EX', ARGV[7])
  else
    redis.call('SET', KEYS[2], value)
  end
end
return {1, ARGV[1]}
"""

UPDATE_RECORD = """
-- Compare-and-set of a record plus its side effects.
-- KEYS: rec, pending, counts, events, learn, corrections
-- ARGV: expected_json, new_json, event_id, kind, employed, censored, publish, events_maxlen,
--       previous_status (corrections only)
-- kind: 'assignment', 'outcome' (first settlement) or 'correction' (a late report replacing
-- the sweep's not_reported: already settled, counted not employed and not censored)
local current = redis.call('HGET', KEYS[1], 'json')
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[2])
local sid = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'kind', ARGV[4],
  'event_id', ARGV[3])
redis.call('HSET', KEYS[1], 'ev', (redis.call('HGET', KEYS[1], 'ev') or '') .. ' ' .. sid)
if ARGV[4] == 'outcome' then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[3], 'settled', 1)
end
if ARGV[4] ~= 'assignment' then
  if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[3], 'employed', 1) end
  if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[3], 'censored', 1) end
end
if ARGV[4] == 'correction' then
  local status = cjson.decode(ARGV[2])['outcome']['status']
  local now = redis.call('TIME')
  redis.call('XADD', KEYS[6], '*', 'event_id', ARGV[3], 'previous', ARGV[9], 'new', status,
    'at', now[1] .. '.' .. string.format('%06d', tonumber(now[2])))
end
if ARGV[7] == '1' then
  local lid = redis.call('XADD', KEYS[5], '*', 'event_id', ARGV[3], 'kind', ARGV[4])
  redis.call('HSET', KEYS[1], 'ln', (redis.call('HGET', KEYS[1], 'ln') or '') .. ' ' .. lid)
end
return 1
"""

ERASE_EVENT = """
-- Remove one event everywhere (erasure, retention); counters follow the record's last state.
-- KEYS: rec, protected, index, pending, record_times, events, learn, counts_treatment,
--       counts_control
-- ARGV: event_id, learning group, citizen key prefix ('<prefix>cit:')
local h = redis.call('HMGET', KEYS[1], 'json', 'idem', 'ev', 'ln')
local found = 0
if h[1] then
  local rec = cjson.decode(h[1])
  local counts = KEYS[8]
  if rec['group'] == 'control' then counts = KEYS[9] end
  redis.call('HINCRBY', counts, 'decisions', -1)
  if type(rec['outcome']) == 'table' then
    redis.call('HINCRBY', counts, 'settled', -1)
    if rec['censored'] == true then
      redis.call('HINCRBY', counts, 'censored', -1)
    elseif type(rec['reward']) == 'number' and rec['reward'] > 0 then
      redis.call('HINCRBY', counts, 'employed', -1)
    end
  end
  local citizen = ARGV[3] .. rec['citizen_key']
  redis.call('SREM', citizen, ARGV[1])
  if redis.call('SCARD', citizen) == 0 then redis.call('DEL', citizen) end
  found = 1
end
if h[2] then
  local idem = redis.call('GET', h[2])
  if idem and string.sub(idem, 1, string.len(ARGV[1])) == ARGV[1] then redis.call('DEL', h[2]) end
end
for id in string.gmatch(h[3] or '', '%S+') do redis.call('XDEL', KEYS[6], id) end
for id in string.gmatch(h[4] or '', '%S+') do
  redis.call('XACK', KEYS[7], ARGV[2], id)
  redis.call('XDEL', KEYS[7], id)
end
local protected = redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return {found, protected, h[2] and 1 or 0, #(h[4] or '') > 0 and 1 or 0}
"""

_SAVE_SNAPSHOT = """
-- Store a snapshot, make it the latest, drop all but the newest `keep` (never the approved
-- version, control hash field 'approved'). Shared by SAVE_MODEL and FENCED_COMMIT.
local function save_snapshot(model_key, index, latest, control, version, data, created_at,
                             keep, prefix)
  redis.call('HSET', model_key, 'data', data, 'created_at', created_at, 'version', version)
  redis.call('ZADD', index, created_at, version)
  redis.call('SET', latest, version)
  local n = redis.call('ZCARD', index)
  keep = tonumber(keep)
  if n > keep then
    local approved = redis.call('HGET', control, 'approved')
    local old = redis.call('ZRANGE', index, 0, n - keep - 1)
    for _, v in ipairs(old) do
      if v ~= version and v ~= approved then
        redis.call('DEL', prefix .. v)
        redis.call('ZREM', index, v)
      end
    end
  end
  return n
end
"""

SAVE_MODEL = (
    _SAVE_SNAPSHOT
    + """
-- KEYS: model_key, model_index, model_latest, control
-- ARGV: version, data, created_at, keep, model_key_prefix
return save_snapshot(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                     ARGV[5])
"""
)

LATEST_MODEL = """
-- KEYS: model_latest; ARGV: model_key_prefix
local v = redis.call('GET', KEYS[1])
if not v then return nil end
return redis.call('HMGET', ARGV[1] .. v, 'version', 'data', 'created_at')
"""

ACQUIRE_LEASE = """
-- KEYS: lease, fence; ARGV: owner, ttl_ms. Renew if we hold it, take it if free, else refuse.
-- Reply: the fencing token of this holding, 0 when someone else holds the lease. Every new
-- holding increments the token (the fence key never expires), so a holder that was paused past
-- its lease finds its token stale and FENCED_COMMIT refuses its writes.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local token = redis.call('GET', KEYS[2])
  if not token then token = redis.call('INCR', KEYS[2]) end
  return tonumber(token)
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('INCR', KEYS[2])
end
return 0
"""

FENCED_COMMIT = (
    _SAVE_SNAPSHOT
    + """
-- The learner's commit, conditional on its fencing token (one atomic step).
-- KEYS: fence, model_key, model_index, model_latest, control, learn
-- ARGV: token, group, has_snapshot, version, data, created_at, keep, model_key_prefix,
--       message ids...
-- Reply: 0 (stale token: nothing written, the messages stay pending) or 1.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '1' then
  save_snapshot(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
end
for i = 9, #ARGV do
  redis.call('XACK', KEYS[6], ARGV[2], ARGV[i])
  redis.call('XDEL', KEYS[6], ARGV[i])
end
return 1
"""
)

RELEASE_LEASE = """
-- KEYS: lease; ARGV: owner. Delete only our own lease.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class StoreScripts:
    """The registered scripts of one client (EVALSHA with automatic reload)."""

    put_decision: Script
    update_record: Script
    save_model: Script
    latest_model: Script
    acquire_lease: Script
    release_lease: Script
    fenced_commit: Script

    @classmethod
    def register(cls, client: redis.Redis) -> StoreScripts:
        """Register every script on ``client`` (no round trip until first use)."""
        return cls(
            put_decision=client.register_script(PUT_DECISION),
            update_record=client.register_script(UPDATE_RECORD),
            save_model=client.register_script(SAVE_MODEL),
            latest_model=client.register_script(LATEST_MODEL),
            acquire_lease=client.register_script(ACQUIRE_LEASE),
            release_lease=client.register_script(RELEASE_LEASE),
            fenced_commit=client.register_script(FENCED_COMMIT),
        )
