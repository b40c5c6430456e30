"""The rate-limit store: a sliding window per (route, identity) in Redis, one Lua script, atomic
across every gateway process. What a Redis failure means for a request (the route's fail mode)
is decided by gateway.service_layer.rate_limits, not here.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.domain.errors import StoreUnavailableError

# A sorted set of request ids scored by arrival time (ms, Redis's own clock so that every gateway
# process agrees). Trim what left the window, admit if below the limit, else tell when the oldest
# entry leaves. Check and add run in one script, so concurrent callers cannot both take the last slot.
SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local window_ms = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now_ms, member)
  redis.call('PEXPIRE', key, window_ms)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {1, limit - count - 1, tonumber(oldest[2]) + window_ms - now_ms}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window_ms - now_ms}
"""


class RedisSlidingWindow:
    """Counts one request against (route, identity) if the window has room, in one round trip."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gw:rl:") -> None:
        self._prefix = prefix
        self._script = client.register_script(SLIDING_WINDOW_LUA)

    async def hit(
        self, route_name: str, identity: str, limit: int, window_ms: int
    ) -> tuple[bool, int, int]:
        """(admitted, remaining, ms until the oldest counted request leaves the window);
        StoreUnavailableError when Redis cannot be asked."""
        key = f"{self._prefix}{route_name}:{identity}"
        try:
            allowed, remaining, reset_ms = await self._script(
                keys=[key], args=[window_ms, limit, uuid.uuid4().hex]
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        return bool(allowed), int(remaining), int(reset_ms)
