"""Sliding-window rate limit per (identity, route) in Redis: one Lua script, atomic across processes."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from redis.exceptions import RedisError

from gateway.routes import RateLimitConfig

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


UNCHECKED = Counter(
    "gateway_rate_limit_unchecked_total",
    "Requests the rate limit could not count because Redis failed, by route and fail mode "
    "(open: let through uncounted; closed: refused with 503).",
    ["route", "fail"],
)
_log = structlog.get_logger("gateway.ratelimit")


class RateLimiterUnavailableError(Exception):
    """Redis could not be asked and the route fails closed (→ 503)."""


@dataclass(frozen=True)
class RateLimitDecision:
    """Outcome of one check; `headers()` renders the RateLimit / RateLimit-Policy fields."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: float
    checked: bool = True

    def headers(self) -> dict[str, str]:
        """RateLimit headers (draft-ietf-httpapi-ratelimit-headers) plus Retry-After when refused."""
        if not self.checked:
            return {}
        window = math.ceil(self.window_seconds)
        headers = {
            "RateLimit-Policy": f'"default";q={self.limit};w={window}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimiter:
    """Checks (identity, route) against a route's RateLimitConfig."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gw:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(SLIDING_WINDOW_LUA)
        # One warning when Redis starts failing and one line when it answers again, not one a request.
        self._degraded = False

    async def check(
        self, identity: str, route_name: str, config: RateLimitConfig
    ) -> RateLimitDecision:
        """Admit or refuse one request; Redis errors follow the route's fail mode."""
        window_ms = max(1, int(config.window_seconds * 1000))
        key = f"{self._prefix}{route_name}:{identity}"
        try:
            allowed, remaining, reset_ms = await self._script(
                keys=[key], args=[window_ms, config.limit, uuid.uuid4().hex]
            )
        except (RedisError, OSError) as exc:
            UNCHECKED.labels(route_name, config.fail).inc()
            if not self._degraded:
                self._degraded = True
                _log.warning(
                    "rate limiter degraded: Redis failed",
                    route=route_name,
                    fail=config.fail,
                    error=type(exc).__name__,
                )
            if config.fail == "closed":
                raise RateLimiterUnavailableError(str(exc)) from exc
            return RateLimitDecision(
                True, config.limit, config.limit, 0, config.window_seconds, False
            )
        if self._degraded:
            self._degraded = False
            _log.info("rate limiter recovered: Redis answers again", route=route_name)
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=config.limit,
            remaining=int(remaining),
            reset_seconds=math.ceil(int(reset_ms) / 1000),
            window_seconds=config.window_seconds,
        )
