"""The login throttle over Redis (one Lua script per step, Redis's clock, TTL'd keys, shared by
every gateway process), failing open to per-process counters when Redis cannot be asked.

The policy (keys, backoff, why fail open) is gateway.domain.login_throttle; the in-memory
fallback is gateway.adapters.login_throttle_local; the login use case that drives it is
gateway.service_layer.login.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError
from shop_common.logging import get_logger

from gateway.adapters.login_throttle_local import LocalLoginCounters
from gateway.domain.login_throttle import (
    Admission,
    Failure,
    Policy,
    Scope,
    account_key,
    client_key,
)
from gateway.settings import Settings

# KEYS: account counter, account block, client block. ARGV: free, window ms, base ms, cap ms.
# Refused while either block lives (and then nothing is counted); else the attempt is counted
# and, past the free ones, the account closes for base * 2^k ms (capped) from now.
BEGIN_LUA = """
local account_left = redis.call('PTTL', KEYS[2])
local client_left = redis.call('PTTL', KEYS[3])
if account_left > 0 or client_left > 0 then
  if client_left > account_left then return {0, client_left, 2} end
  return {0, account_left, 1}
end
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local free = tonumber(ARGV[1])
local delay = 0
if n > free then
  local k = n - free - 1
  delay = tonumber(ARGV[4])
  if k < 40 then delay = math.min(delay, math.floor(tonumber(ARGV[3]) * 2 ^ k)) end
  redis.call('SET', KEYS[2], '1', 'PX', delay)
end
return {1, delay, n}
"""
# KEYS: client counter, client block. ARGV as above: count one failure, maybe close the client.
FAILED_LUA = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local free = tonumber(ARGV[1])
local delay = 0
if n > free then
  local k = n - free - 1
  delay = tonumber(ARGV[4])
  if k < 40 then delay = math.min(delay, math.floor(tonumber(ARGV[3]) * 2 ^ k)) end
  redis.call('SET', KEYS[2], '1', 'PX', delay)
end
return {n, delay}
"""
# KEYS: account counter. An attempt the user service never judged (it was unavailable) is not
# held against the account. Never below zero, never a key without a TTL.
REFUND_LUA = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n
"""
THROTTLED = Counter(
    "gateway_login_throttled_total",
    "POST /auth/token attempts refused with 429 before the password was checked, by what was "
    "closed (account or client) and where the count lives (redis, or local when Redis failed).",
    ["scope", "store"],
)
BACKOFFS = Counter(
    "gateway_login_backoffs_total",
    "Login backoffs started (an account or a client closed for a while after too many failures).",
    ["scope"],
)
FALLBACK = Counter(
    "gateway_login_throttle_fallback_total",
    "Login throttle steps served by the per-process fallback because Redis failed (fail open).",
    ["step"],
)
_log = get_logger("gateway.login_throttle")


class LoginThrottle:
    """begin() before the password is checked; then exactly one of failed/succeeded/unjudged."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        account: Policy,
        per_client: Policy,
        prefix: str = "gw:lt:",
        local_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.per_client = per_client
        self._prefix = prefix
        self._begin = client.register_script(BEGIN_LUA)
        self._failed = client.register_script(FAILED_LUA)
        self._refund = client.register_script(REFUND_LUA)
        self._client = client
        self._local = LocalLoginCounters(local_entries)
        self._clock = clock  # the fallback's clock (Redis counts on its own)
        self._degraded = False

    @classmethod
    def from_settings(
        cls,
        client: aioredis.Redis,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> LoginThrottle:
        """A throttle with the thresholds of these settings."""
        return cls(
            client,
            account=Policy(
                settings.login_account_free_failures,
                settings.login_account_window_seconds,
                settings.login_backoff_base_seconds,
                settings.login_backoff_max_seconds,
            ),
            per_client=Policy(
                settings.login_client_free_failures,
                settings.login_client_window_seconds,
                settings.login_backoff_base_seconds,
                settings.login_backoff_max_seconds,
            ),
            prefix=settings.login_throttle_prefix,
            local_entries=settings.login_local_fallback_entries,
            clock=clock,
        )

    def _keys(self, username: str, address: str) -> tuple[str, str, str, str]:
        account, client = account_key(username), client_key(address)
        p = self._prefix
        return f"{p}a:{account}", f"{p}ab:{account}", f"{p}c:{client}", f"{p}cb:{client}"

    def _redis_failed(self, step: str, exc: BaseException) -> None:
        FALLBACK.labels(step).inc()
        if not self._degraded:
            self._degraded = True
            _log.warning(
                "login_throttle_degraded",
                step=step,
                error=type(exc).__name__,
            )

    def _redis_answered(self) -> None:
        if self._degraded:
            self._degraded = False
            _log.info("login_throttle_recovered")

    async def begin(self, username: str, address: str) -> Admission:
        """Refuse (with how long to wait) while the account or the client is closed; else
        count the attempt against the account and admit it."""
        a_count, a_block, c_count, c_block = self._keys(username, address)
        local = False
        try:
            admitted, value, which = await self._begin(
                keys=[a_count, a_block, c_block], args=self.account.args()
            )
            self._redis_answered()
        except (RedisError, OSError) as exc:
            self._redis_failed("begin", exc)
            admitted, value, which = self._begin_locally(a_count, c_count)
            local = True
        if admitted:
            if int(value) > 0:
                self._backoff("account", int(which), int(value) / 1000, address, username)
            return Admission(True, local=local)
        closed: Scope = "client" if int(which) == 2 else "account"
        THROTTLED.labels(closed, "local" if local else "redis").inc()
        retry = max(1, math.ceil(int(value) / 1000))
        return Admission(False, retry, closed, local)

    def _begin_locally(self, a_count: str, c_count: str) -> tuple[int, int, int]:
        now = self._clock()
        account_left = self._local.blocked_for(a_count, now)
        client_left = self._local.blocked_for(c_count, now)
        if account_left > 0 or client_left > 0:
            if client_left > account_left:
                return 0, math.ceil(client_left * 1000), 2
            return 0, math.ceil(account_left * 1000), 1
        n, delay = self._local.count(a_count, self.account, now)
        return 1, math.ceil(delay * 1000), n

    async def failed(self, username: str, address: str) -> Failure:
        """The user service said no: count a failure against the client (the account's
        attempt was counted by begin)."""
        _, _, c_count, c_block = self._keys(username, address)
        try:
            n, delay_ms = await self._failed(keys=[c_count, c_block], args=self.per_client.args())
            self._redis_answered()
        except (RedisError, OSError) as exc:
            self._redis_failed("failed", exc)
            n, delay = self._local.count(c_count, self.per_client, self._clock())
            delay_ms = math.ceil(delay * 1000)
        if int(delay_ms) > 0:
            self._backoff("client", int(n), int(delay_ms) / 1000, address, username)
        remaining = max(0, self.per_client.free - int(n))
        return Failure(int(n), remaining, self.per_client)

    async def succeeded(self, username: str, address: str) -> None:
        """The right password: the account's counter and backoff are cleared."""
        a_count, a_block, _, _ = self._keys(username, address)
        self._local.forget(a_count)
        try:
            await self._client.delete(a_count, a_block)
            self._redis_answered()
        except (RedisError, OSError) as exc:
            self._redis_failed("succeeded", exc)

    async def unjudged(self, username: str, address: str) -> None:
        """The user service could not answer: the attempt is not held against the account."""
        a_count, _, _, _ = self._keys(username, address)
        self._local.refund(a_count, self._clock())
        try:
            await self._refund(keys=[a_count])
            self._redis_answered()
        except (RedisError, OSError) as exc:
            self._redis_failed("unjudged", exc)

    def _backoff(self, scope: Scope, count: int, seconds: float, address: str, user: str) -> None:
        BACKOFFS.labels(scope).inc()
        _log.warning(
            "login_backoff",
            scope=scope,
            attempts=count,
            closed_seconds=seconds,
            client=address,
            account=account_key(user)[:12],
        )
