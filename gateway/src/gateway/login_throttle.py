"""Login throttling for POST /auth/token: exponential backoff per account, a budget per client.

Asked BEFORE the password goes to the user service (argon2 is deliberately expensive, so a
refused attempt must cost the system nothing but one Redis round trip):

- Per account (the username, normalised: NFKC, trimmed, case-folded, then hashed, so
  "Ada@X.io " and "ada@x.io" share one counter and no email is stored in Redis). Every attempt
  that is let through is counted first, atomically with the check, so a burst of parallel
  guesses cannot all slip past the same free slot. The first `free` attempts cost nothing;
  each one after that closes the account for base * 2**k seconds (1, 2, 4, ... up to the cap)
  before the next attempt is heard. Attempts refused while it is closed are not counted and do
  not extend it. A correct password reopens the account and clears its counter; the counter
  otherwise forgets after `window` seconds without an attempt. So the worst an attacker can
  impose on a victim is one cap-long delay per guess it pays for, never a lockout.
- Per client address (gateway.forwarding: the peer, or the client a trusted proxy names; IPv6
  clients by their /64, which one host gets for free). Only failures are counted (many users
  logging in from one address, as the e2e suites and an office NAT do, cost nothing), after the
  user service said no, with a larger free budget and the same backoff. Success does not reset
  it (an attacker would log in to its own account between guesses).

Both live in Redis (one Lua script per step, Redis's clock, TTL'd keys), shared by every
gateway process.

Redis unavailable: fail OPEN to a per-process throttle with the same numbers (an in-memory
table of bounded size). Failing closed would let a Redis outage (or an attacker who can cause
one) stop every user from logging in, for a control whose job is to slow guessing, not to
authorise anything; failing open with no throttle at all would hand an attacker unlimited
guesses for the length of the outage. The local fallback keeps the backoff per account and
per client on each process (N processes: at most N times the budget) and answers 401/429 as
usual, never 5xx. The switch is logged once each way and counted in
gateway_login_throttle_fallback_total.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from redis.exceptions import RedisError

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

Scope = Literal["account", "client"]
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
_log = structlog.get_logger("gateway.login_throttle")


def normalise_username(username: str) -> str:
    """One spelling per account: NFKC, surrounding whitespace gone, case-folded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def account_key(username: str) -> str:
    """The account's counter id: a hash, so Redis never holds an email address."""
    return hashlib.sha256(normalise_username(username).encode("utf-8")).hexdigest()[:32]


def client_key(address: str) -> str:
    """The client's counter id: the address, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Policy:
    """Free attempts, the counter's window, and the backoff (base doubling up to cap)."""

    free: int
    window_seconds: float
    base_seconds: float
    max_seconds: float

    def delay_seconds(self, count: int) -> float:
        """How long the count-th attempt closes the key for (0 while it is a free one)."""
        if count <= self.free:
            return 0.0
        k = count - self.free - 1
        if k >= 40:
            return self.max_seconds
        return float(min(self.max_seconds, self.base_seconds * 2**k))

    def args(self) -> list[int]:
        """ARGV for the scripts: free, window ms, base ms, cap ms."""
        return [
            self.free,
            max(1, int(self.window_seconds * 1000)),
            max(1, int(self.base_seconds * 1000)),
            max(1, int(self.max_seconds * 1000)),
        ]


@dataclass(frozen=True)
class Admission:
    """The answer to "may this attempt be heard?"."""

    admitted: bool
    retry_after_seconds: int = 0
    closed: Scope | None = None
    local: bool = False


@dataclass(frozen=True)
class Failure:
    """A failure as counted for the client: how many of its free failures are left."""

    client_failures: int
    remaining: int
    policy: Policy

    def headers(self) -> dict[str, str]:
        """RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for the client's budget."""
        window = math.ceil(self.policy.window_seconds)
        return {
            "RateLimit-Policy": f'"login-failures";q={self.policy.free};w={window}',
            "RateLimit": f'"login-failures";r={self.remaining};t={window}',
        }


class _LocalStore:
    """The same counters in process memory (Redis down), a key's block kept beside its count.
    Bounded: when full, the least recently counted keys go first."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._blocks: OrderedDict[str, float] = OrderedDict()

    def _trim(self) -> None:
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)
        while len(self._blocks) > self._max:
            self._blocks.popitem(last=False)

    def blocked_for(self, key: str, now: float) -> float:
        until = self._blocks.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._blocks[key]
            return 0.0
        return until - now

    def count(self, key: str, policy: Policy, now: float) -> tuple[int, float]:
        n, expires = self._counts.pop(key, (0, now))
        n = n + 1 if expires > now else 1
        self._counts[key] = (n, now + policy.window_seconds)
        delay = policy.delay_seconds(n)
        if delay:
            self._blocks.pop(key, None)
            self._blocks[key] = now + delay
        self._trim()
        return n, delay

    def forget(self, key: str) -> None:
        self._counts.pop(key, None)
        self._blocks.pop(key, None)

    def refund(self, key: str, now: float) -> None:
        n, expires = self._counts.get(key, (0, now))
        if n > 0 and expires > now:
            self._counts[key] = (n - 1, expires)


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
    ) -> None:
        self.account = account
        self.per_client = per_client
        self._prefix = prefix
        self._begin = client.register_script(BEGIN_LUA)
        self._failed = client.register_script(FAILED_LUA)
        self._refund = client.register_script(REFUND_LUA)
        self._client = client
        self._local = _LocalStore(local_entries)
        self._degraded = False

    @classmethod
    def from_settings(cls, client: aioredis.Redis, settings: Settings) -> LoginThrottle:
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
                "login throttle degraded: Redis failed, counting in this process",
                step=step,
                error=type(exc).__name__,
            )

    def _redis_answered(self) -> None:
        if self._degraded:
            self._degraded = False
            _log.info("login throttle recovered: Redis answers again")

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
        now = time.monotonic()
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
            n, delay = self._local.count(c_count, self.per_client, time.monotonic())
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
        self._local.refund(a_count, time.monotonic())
        try:
            await self._refund(keys=[a_count])
            self._redis_answered()
        except (RedisError, OSError) as exc:
            self._redis_failed("unjudged", exc)

    def _backoff(self, scope: Scope, count: int, seconds: float, address: str, user: str) -> None:
        BACKOFFS.labels(scope).inc()
        _log.warning(
            "login backoff",
            scope=scope,
            attempts=count,
            closed_seconds=seconds,
            client=address,
            account=account_key(user)[:12],
        )
