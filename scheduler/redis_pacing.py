"""The shared pacing of scheduler.pacing kept in Redis instead of the database (CSM_REDIS_URL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from scheduler.pacing import Limits

# Books a slot on every key at once, atomically (a Lua script runs alone on the server). Per key:
# <key>:slots, a sorted set of booked instants (epoch seconds); <key>:last, the latest booking
# (bookings on a key only move forward, which makes "the n-th most recent" the one to check);
# <key>:blocked, a Retry-After. Same rules as DatabasePacer.
_RESERVE = """
local now = tonumber(ARGV[1])
local latest = tonumber(ARGV[2])
local margin = tonumber(ARGV[3])
local share = tonumber(ARGV[4])
local member = ARGV[5]
local slot = now
local at = 6
local specs = {}
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[at]); at = at + 1
  local windows = {}
  for j = 1, count do
    windows[j] = {tonumber(ARGV[at]), tonumber(ARGV[at + 1])}; at = at + 2
  end
  specs[i] = windows
  slot = math.max(slot, tonumber(redis.call('GET', key .. ':blocked') or '0'))
  slot = math.max(slot, tonumber(redis.call('GET', key .. ':last') or '0'))
  for _, w in ipairs(windows) do
    local nth = redis.call('ZREVRANGE', key .. ':slots', w[1] - 1, w[1] - 1, 'WITHSCORES')
    if nth[2] then slot = math.max(slot, tonumber(nth[2]) + w[2] + math.min(margin, w[2] / 10) + share * w[2]) end
  end
end
if slot > latest then return {tostring(slot), 0} end
for i, key in ipairs(KEYS) do
  local longest = 1
  for _, w in ipairs(specs[i]) do longest = math.max(longest, w[2]) end
  redis.call('ZADD', key .. ':slots', slot, member .. ':' .. i)
  redis.call('ZREMRANGEBYSCORE', key .. ':slots', '-inf', now - longest * 1.1 - 1)
  redis.call('EXPIRE', key .. ':slots', math.ceil(longest * 1.1 + 60))
  redis.call('SET', key .. ':last', tostring(slot), 'EX', math.ceil(longest * 1.1 + 60))
end
return {tostring(slot), 1}
"""

_BLOCK = """
local until_at = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local index = ARGV[3]
for _, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key .. ':blocked') or '0')
  if until_at > current then
    redis.call('SET', key .. ':blocked', tostring(until_at), 'EX', ttl)
    redis.call('ZADD', index, until_at, key)
    redis.call('EXPIRE', index, ttl)
  end
end
return 1
"""

_HELD_BACK = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = 0
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')) do
  if string.sub(key, 1, string.len(ARGV[1])) == ARGV[1] then count = count + 1 end
end
return count
"""


_LATE = """
local booked = tonumber(ARGV[1])
local actual = tonumber(ARGV[2])
local member = nil
for _, key in ipairs(KEYS) do
  local found = redis.call('ZRANGEBYSCORE', key .. ':slots', booked, booked)
  for _, m in ipairs(found) do redis.call('ZADD', key .. ':slots', actual, m) end
  local last = tonumber(redis.call('GET', key .. ':last') or '0')
  if actual > last then redis.call('SET', key .. ':last', tostring(actual), 'KEEPTTL') end
end
return 1
"""


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


class RedisPacer:
    """scheduler.pacing.Pacer on Redis: for deployments that already run it, or whose database
    should not take a write per post. Keys are prefixed (``prefix``), so several installations
    or tests can share one server. A single Redis (not Cluster: a booking touches several keys).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "csm:pacing:",
        margin: float = 0.02,
        margin_share: float = 0.01,
        client: Any = None,
    ) -> None:
        import redis

        self.redis = client or redis.Redis.from_url(url)
        self.prefix = prefix
        self.margin = margin
        self.margin_share = margin_share
        self._reserve = self.redis.register_script(_RESERVE)
        self._block = self.redis.register_script(_BLOCK)
        self._late = self.redis.register_script(_LATE)
        self._held_back = self.redis.register_script(_HELD_BACK)
        # Every key under a Retry-After, scored by when it ends (for held_back).
        self._index = prefix + "held-back"

    def reserve(
        self, keys: Sequence[tuple[str, Limits]], *, now: datetime, latest: datetime
    ) -> tuple[datetime, bool]:
        if not keys:
            return now, True
        args: list[Any] = [_epoch(now), _epoch(latest), self.margin, self.margin_share]
        args.append(uuid.uuid4().hex)
        for _key, windows in keys:
            args.append(len(windows))
            for w in windows:
                args += [w.count, w.seconds]
        slot, booked = self._reserve(keys=[self.prefix + k for k, _ in keys], args=args)
        return datetime.fromtimestamp(float(slot), UTC), bool(int(booked))

    def block(self, keys: Sequence[str], until: datetime) -> None:
        if keys:
            # Kept a minute past the window (by the real clock: Redis expires on its own).
            ttl = max(60, int(_epoch(until) - time.time()) + 60)
            self._block(
                keys=[self.prefix + k for k in keys], args=[_epoch(until), ttl, self._index]
            )

    def late(self, keys: Sequence[str], booked: datetime, actual: datetime) -> None:
        if keys:
            self._late(keys=[self.prefix + k for k in keys], args=[_epoch(booked), _epoch(actual)])

    def held_back(self, prefix: str, now: datetime) -> int:
        return int(self._held_back(keys=[self._index], args=[self.prefix + prefix, _epoch(now)]))
