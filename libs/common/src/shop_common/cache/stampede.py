"""Stampede protection: single-flight inside a process, a token lock in Redis across processes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from shop_common.cache.base import MISS
from shop_common.cache.redis import RedisCache
from shop_common.resilience.retry import RetryPolicy, backoff_delays
from shop_common.resilience.timeouts import Deadline

__all__ = ["LOAD_LOCK_POLL", "RedisLoadLock", "SingleFlight"]

# How a caller that finds the load lock taken polls for the value (for at most its lock_wait).
LOAD_LOCK_POLL = RetryPolicy(max_attempts=None, initial_backoff=0.005, max_backoff=0.05, jitter=0.0)

T = TypeVar("T")

# Compare-and-delete: only the holder of the token may release the lock.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Store the loaded value and release the lock in one step. KEYS share a hash tag
# (RedisCache.key / lock_key), so this works on a Redis Cluster too.
_STORE_AND_RELEASE = """
if ARGV[2] == '' then redis.call('set', KEYS[1], ARGV[1])
else redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('get', KEYS[2]) == ARGV[3] then redis.call('del', KEYS[2]) end
return 1
"""


class SingleFlight(Generic[T]):
    """N concurrent calls for one key run the function once; all get its result or error.

    The function runs in its own task, so one caller's cancellation does not cancel the load
    the others wait for.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def in_flight(self, key: Hashable) -> bool:
        """Whether a load for key is running now."""
        return key in self._flights

    async def run(
        self,
        key: Hashable,
        fn: Callable[[], Awaitable[T]],
        on_wait: Callable[[], None] = lambda: None,
    ) -> T:
        """Await fn() once per key at a time; concurrent callers share its outcome."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._flights[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        else:
            on_wait()
        return await asyncio.shield(task)

    def _done(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: waiters re-raise it; no "never retrieved" warning


class RedisLoadLock:
    """A per-key load lock in Redis: SET NX PX with a random token, released by compare-and-delete."""

    def __init__(self, cache: RedisCache, ttl: float = 10.0) -> None:
        if ttl <= 0:
            raise ValueError("lock ttl must be > 0")
        self.cache = cache
        self.ttl_ms = int(ttl * 1000)
        self._release = cache.client.register_script(_RELEASE)
        self._store_release = cache.client.register_script(_STORE_AND_RELEASE)

    async def acquire(self, key: str) -> str | None:
        """The token when this caller now holds key's lock, None when someone else does."""
        token = secrets.token_hex(16)
        name = self.cache.lock_key(key)
        got = await self.cache._call(
            lambda: self.cache.client.set(name, token, nx=True, px=self.ttl_ms)
        )
        return token if got else None

    async def acquire_or_wait(
        self, key: str, wait: float, on_wait: Callable[[], None] = lambda: None
    ) -> tuple[str | None, Any, float | None]:
        """(token, MISS, None) when this caller should load; (None, value, ttl) when another did.

        Polls the value while another process holds the lock (the pauses of LOAD_LOCK_POLL),
        for at most `wait` seconds, then returns (None, MISS, None): load without the lock
        rather than fail. Redis errors raise.
        """
        polls = backoff_delays(LOAD_LOCK_POLL, deadline=Deadline.after(wait))
        waited = False
        while True:
            token = await self.acquire(key)
            if token is not None:
                # Double-check: the previous holder may have stored the value just now.
                value, remaining = await self.cache.lookup_with_ttl(key)
                if value is MISS:
                    return token, MISS, None
                await self.release(key, token)
                return None, value, remaining
            if not waited:
                waited = True
                on_wait()
            pause = next(polls, None)
            if pause is None:  # the next poll would come after `wait`
                return None, MISS, None
            await asyncio.sleep(pause)
            value, remaining = await self.cache.lookup_with_ttl(key)
            if value is not MISS:
                return None, value, remaining

    async def held(self, key: str) -> bool:
        """Whether anyone holds key's lock."""
        name = self.cache.lock_key(key)
        return bool(await self.cache._call(lambda: self.cache.client.exists(name)))

    async def release(self, key: str, token: str) -> bool:
        """Release key's lock if token still holds it; True when it did."""
        keys = [self.cache.lock_key(key)]
        return bool(await self.cache._call(lambda: self._release(keys=keys, args=[token])))

    async def store_and_release(self, key: str, value: Any, ttl: float | None, token: str) -> None:
        """Write value (or NEGATIVE) for ttl seconds and release the lock, atomically."""
        px = self.cache._ttl_ms(ttl)
        keys = [self.cache.key(key), self.cache.lock_key(key)]
        args: list[bytes | str | int] = [self.cache.encode(value), "" if px is None else px, token]
        await self.cache._call(lambda: self._store_release(keys=keys, args=args))
