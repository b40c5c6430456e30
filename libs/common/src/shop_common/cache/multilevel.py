"""Cache-aside on the two levels: stampede-safe loads, negative caching, XFetch, refresh.

A miss in both levels runs the loader once per key in the process (single-flight) and once
across processes (a token lock in Redis, bounded wait for the others). If Redis is down the
loader still runs and its value still reaches the caller and L1.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shop_common.cache.base import MISS, NEGATIVE
from shop_common.cache.levels import LayeredCache
from shop_common.cache.memory import MemoryCache
from shop_common.cache.metrics import CACHE_LOADS, CACHE_STAMPEDE_WAITS
from shop_common.cache.redis import RedisCache, RedisClient
from shop_common.cache.stampede import RedisLoadLock, SingleFlight

__all__ = ["MultiLevelCache"]

T = TypeVar("T")
Loader = Callable[[], Awaitable[Any]]


class MultiLevelCache(LayeredCache):
    """L1 + L2 + coherence (see LayeredCache) with `get_or_load` cache-aside on top.

    xfetch_beta enables probabilistic early refresh (XFetch): an L2 hit with `remaining`
    seconds left starts a background reload when `-delta * beta * ln(U) >= remaining`, delta
    being this instance's smoothed load time; beta 1.0 is the paper's default, > 1 earlier.
    U comes from `xfetch_random` (uniform in [0, 1); random.random unless a test injects one).
    """

    def __init__(
        self,
        l1: MemoryCache,
        l2: RedisCache,
        coherence_channel: str | None = None,
        redis: RedisClient | None = None,
        *,
        name: str | None = None,
        negative_ttl: float = 30.0,
        lock_ttl: float = 10.0,
        lock_wait: float = 5.0,
        ping_interval: float = 1.0,
        xfetch_beta: float | None = None,
        xfetch_random: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(l1, l2, coherence_channel, redis, name=name, ping_interval=ping_interval)
        if negative_ttl <= 0 or lock_wait < 0:
            raise ValueError("negative_ttl must be > 0 and lock_wait >= 0")
        self.negative_ttl = negative_ttl
        self.lock_wait = lock_wait
        self.lock = RedisLoadLock(l2, ttl=lock_ttl)
        self.xfetch_beta = xfetch_beta
        self._xfetch_random = xfetch_random
        self.load_seconds = 0.0  # smoothed loader duration (XFetch's delta)
        self._flight: SingleFlight[Any] = SingleFlight()
        self._refreshing: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._m_wait_process = CACHE_STAMPEDE_WAITS.labels(self.name, "process")
        self._m_wait_redis = CACHE_STAMPEDE_WAITS.labels(self.name, "redis")

    async def close(self) -> None:
        """Stop the coherence subscriber and wait for background refreshes."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await super().close()

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        negative_ttl: float | None = None,
    ) -> T | None:
        """The cached value, else loader() once across callers and processes, then cached.

        A None from the loader is cached as "not found" for negative_ttl seconds. A loader
        error reaches every caller waiting on this load and leaves no lock behind.
        """
        value = self.l1.lookup(key)
        if value is not MISS:
            self._m_hit1.inc()
            return None if value is NEGATIVE else value
        self._m_miss1.inc()
        result = await self._flight.run(
            key,
            lambda: self._load_through(key, loader, ttl, negative_ttl),
            self._m_wait_process.inc,
        )
        return None if result is NEGATIVE else result

    async def refresh(
        self, key: str, loader: Loader, ttl: float | None = None, negative_ttl: float | None = None
    ) -> bool:
        """Reload key now unless a refresh of it runs here or in another process; True if done.

        Readers keep getting the current value meanwhile; the new one replaces it everywhere.
        """
        if key in self._refreshing:
            return False
        self._refreshing.add(key)
        since = self.generation
        try:
            try:
                token = await self.lock.acquire(key)
            except Exception as exc:  # Redis down: refresh this instance anyway
                self.count_error("lock", exc)
                token = None
            else:
                if token is None:
                    return False  # another process is loading or refreshing it
            loaded = await self._load_or_unlock(key, loader, token)
            await self._store_loaded(key, loaded, ttl, negative_ttl, token, since)
            return True
        finally:
            self._refreshing.discard(key)

    def refresh_in_background(
        self, key: str, loader: Loader, ttl: float | None = None, negative_ttl: float | None = None
    ) -> None:
        """Start refresh(...) as a task (its errors are counted, never raised)."""
        if key in self._refreshing:
            return

        async def run() -> None:
            try:
                await self.refresh(key, loader, ttl, negative_ttl)
            except Exception as exc:
                self.count_error("refresh", exc)

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ----- internals -----------------------------------------------------------------------
    async def _timed(self, loader: Loader) -> Any:
        started = time.monotonic()
        try:
            loaded = await loader()
        except BaseException:
            CACHE_LOADS.labels(self.name, "error").inc()
            raise
        took = time.monotonic() - started
        self.load_seconds = took if not self.load_seconds else 0.8 * self.load_seconds + 0.2 * took
        CACHE_LOADS.labels(self.name, "none" if loaded is None else "value").inc()
        return loaded

    async def _load_or_unlock(self, key: str, loader: Loader, token: str | None) -> Any:
        """loader(); on failure the lock is released before the error goes to the waiters."""
        try:
            return await self._timed(loader)
        except BaseException:
            if token is not None:
                try:
                    await self.lock.release(key, token)
                except Exception as exc:
                    self.count_error("unlock", exc)
            raise

    def _xfetch_due(self, remaining: float | None) -> bool:
        beta = self.xfetch_beta
        if beta is None or remaining is None or not self.load_seconds:
            return False
        return -self.load_seconds * beta * math.log(self._xfetch_random() or 1e-12) >= remaining

    async def _load_through(
        self, key: str, loader: Loader, ttl: float | None, negative_ttl: float | None
    ) -> Any:
        since = self.generation
        value, remaining = await self._l2_lookup(key)
        if value is not MISS:
            self._m_hit2.inc()
            self._backfill(key, value, remaining, since)
            if value is not NEGATIVE and self._xfetch_due(remaining):
                self.refresh_in_background(key, loader, ttl, negative_ttl)
            return value
        self._m_miss2.inc()
        try:
            token, value, remaining = await self.lock.acquire_or_wait(
                key, self.lock_wait, self._m_wait_redis.inc
            )
        except Exception as exc:  # Redis down: load without the lock (single-flight still holds)
            self.count_error("lock", exc)
            token, value = None, MISS
        if value is not MISS:
            self._backfill(key, value, remaining, since)
            return value
        loaded = await self._load_or_unlock(key, loader, token)
        return await self._store_loaded(key, loaded, ttl, negative_ttl, token, since)

    async def _store_loaded(
        self,
        key: str,
        loaded: Any,
        ttl: float | None,
        negative_ttl: float | None,
        token: str | None,
        since: int,
    ) -> Any:
        value = NEGATIVE if loaded is None else loaded
        if loaded is None:
            ttl = negative_ttl or self.negative_ttl
        try:
            if token is not None:
                await self.lock.store_and_release(key, value, ttl, token)
            else:
                await self.l2.set(key, value, ttl)
        except Exception as exc:
            self.count_error("set", exc)
        if self.generation == since:
            self.l1.set(key, value, self._l1_ttl(ttl if ttl is not None else self.l2.default_ttl))
        else:  # a write or invalidation crossed this load: L1 re-reads L2 next time
            self.l1.delete(key)
        await self._publish([key])
        return value
