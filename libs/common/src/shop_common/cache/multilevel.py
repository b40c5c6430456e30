"""Two-level cache: in-process L1, Redis L2, pub/sub coherence, stampede-safe cache-aside.

Redis trouble never reaches the caller: reads fall back to L1 and the loader, writes to L1;
errors are counted and logged, and the RedisCache's breaker stops calls while Redis is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import structlog

from shop_common.cache.base import MISS, NEGATIVE
from shop_common.cache.coherence import CoherenceChannel
from shop_common.cache.memory import MemoryCache
from shop_common.cache.metrics import (
    CACHE_ERRORS,
    CACHE_HITS,
    CACHE_LOADS,
    CACHE_MISSES,
    CACHE_STAMPEDE_WAITS,
)
from shop_common.cache.redis import RedisCache, RedisClient
from shop_common.cache.stampede import RedisLoadLock, SingleFlight

__all__ = ["MultiLevelCache"]

T = TypeVar("T")
_log = structlog.get_logger(__name__)


class MultiLevelCache:
    """Read-through L1 → L2 with backfill at L2's remaining TTL; writes and deletes hit both.

    Staleness bound across instances: the pub/sub delivery time while the invalidation
    connection is up (milliseconds); a lost connection is noticed within 2 x ping_interval and
    flushes L1; the L1 TTL caps staleness whatever happens.
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
    ) -> None:
        self.l1 = l1
        self.l2 = l2
        self.name = name or l2.namespace
        self.negative_ttl = negative_ttl
        self.lock_wait = lock_wait
        self.lock = RedisLoadLock(l2, ttl=lock_ttl)
        self._flight: SingleFlight[Any] = SingleFlight()
        self.coherence = (
            CoherenceChannel(
                redis or l2.client,
                coherence_channel,
                on_keys=self._evict_l1,
                on_flush=l1.clear,
                on_error=self._error,
                ping_interval=ping_interval,
            )
            if coherence_channel
            else None
        )
        n = self.name
        self._m_hit1, self._m_hit2 = CACHE_HITS.labels(n, "l1"), CACHE_HITS.labels(n, "l2")
        self._m_miss1, self._m_miss2 = CACHE_MISSES.labels(n, "l1"), CACHE_MISSES.labels(n, "l2")
        self._m_wait_process = CACHE_STAMPEDE_WAITS.labels(n, "process")
        self._m_wait_redis = CACHE_STAMPEDE_WAITS.labels(n, "redis")

    # ----- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the coherence subscriber (returns once subscribed, or after 5 s if Redis is down)."""
        if self.coherence is not None:
            await self.coherence.start()

    async def close(self) -> None:
        """Stop the coherence subscriber."""
        if self.coherence is not None:
            await self.coherence.close()

    async def __aenter__(self) -> MultiLevelCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- helpers -------------------------------------------------------------------------
    def _error(self, operation: str, exc: BaseException | None = None) -> None:
        CACHE_ERRORS.labels(self.name, operation).inc()
        if exc is not None:
            _log.warning("cache_backend_error", cache=self.name, op=operation, error=repr(exc))

    def _evict_l1(self, keys: list[str]) -> None:
        for key in keys:
            self.l1.delete(key)

    def _l1_ttl(self, ttl: float | None) -> float | None:
        limits = [t for t in (ttl, self.l1.default_ttl) if t is not None]
        return min(limits) if limits else None

    async def _l2_lookup(self, key: str) -> tuple[Any, float | None]:
        try:
            return await self.l2.lookup_with_ttl(key)
        except Exception as exc:
            self._error("get", exc)
            return MISS, None

    async def _publish(self, keys: Iterable[str]) -> None:
        if self.coherence is not None:
            try:
                await self.coherence.publish_keys(keys)
            except Exception as exc:
                self._error("publish", exc)

    def _backfill(self, key: str, value: Any, remaining: float | None) -> None:
        self.l1.set(key, value, self._l1_ttl(remaining))

    # ----- reads ---------------------------------------------------------------------------
    async def lookup(self, key: str) -> Any:
        """The value, NEGATIVE or MISS, reading L1 then L2 (and backfilling L1)."""
        value = self.l1.lookup(key)
        if value is not MISS:
            self._m_hit1.inc()
            return value
        self._m_miss1.inc()
        value, remaining = await self._l2_lookup(key)
        if value is MISS:
            self._m_miss2.inc()
            return MISS
        self._m_hit2.inc()
        self._backfill(key, value, remaining)
        return value

    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or default on a miss or a cached "not found"."""
        value = await self.lookup(key)
        return default if value is MISS or value is NEGATIVE else value

    # ----- writes --------------------------------------------------------------------------
    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Write to L2 then L1 and evict key from every other instance's L1."""
        try:
            await self.l2.set(key, value, ttl)
        except Exception as exc:
            if not isinstance(exc, TypeError | ValueError):
                self._error("set", exc)
            else:
                raise
        self.l1.set(key, value, self._l1_ttl(ttl if ttl is not None else self.l2.default_ttl))
        await self._publish([key])

    async def delete(self, *keys: str) -> None:
        """Delete from L2 and L1 here and in every other instance's L1."""
        for key in keys:
            self.l1.delete(key)
        try:
            await self.l2.delete(*keys)
        except Exception as exc:
            self._error("delete", exc)
        await self._publish(keys)

    async def invalidate_pattern(self, pattern: str) -> int:
        """Delete every L2 key matching a glob (SCAN on every primary) and flush all L1s."""
        self.l1.clear()
        deleted = 0
        try:
            deleted = await self.l2.delete_pattern(pattern)
        except Exception as exc:
            self._error("delete_pattern", exc)
        if self.coherence is not None:
            try:
                await self.coherence.publish_flush()
            except Exception as exc:
                self._error("publish", exc)
        return deleted

    # ----- cache-aside ---------------------------------------------------------------------
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

    async def _load_through(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None,
        negative_ttl: float | None,
    ) -> Any:
        value, remaining = await self._l2_lookup(key)
        if value is not MISS:
            self._m_hit2.inc()
            self._backfill(key, value, remaining)
            return value
        self._m_miss2.inc()
        token, value = await self._lock_or_wait(key)
        if value is not MISS:
            return value
        try:
            loaded = await loader()
        except BaseException:
            CACHE_LOADS.labels(self.name, "error").inc()
            if token is not None:
                try:
                    await self.lock.release(key, token)
                except Exception as exc:
                    self._error("unlock", exc)
            raise
        CACHE_LOADS.labels(self.name, "none" if loaded is None else "value").inc()
        stored = NEGATIVE if loaded is None else loaded
        ttl = (negative_ttl or self.negative_ttl) if loaded is None else ttl
        await self._store_loaded(key, stored, ttl, token)
        return stored

    async def _store_loaded(
        self, key: str, value: Any, ttl: float | None, token: str | None
    ) -> None:
        try:
            if token is not None:
                await self.lock.store_and_release(key, value, ttl, token)
            else:
                await self.l2.set(key, value, ttl)
        except Exception as exc:
            self._error("set", exc)
        self.l1.set(key, value, self._l1_ttl(ttl if ttl is not None else self.l2.default_ttl))
        await self._publish([key])

    async def _lock_or_wait(self, key: str) -> tuple[str | None, Any]:
        """(token, MISS) when this caller should load; (None, value) when another process did.

        Waits at most lock_wait seconds for the holder; then loads without the lock.
        """
        deadline = time.monotonic() + self.lock_wait
        pause = 0.005
        waited = False
        while True:
            try:
                token = await self.lock.acquire(key)
                if token is not None:
                    # Double-check: the previous holder may have stored it just now.
                    value, remaining = await self.l2.lookup_with_ttl(key)
                    if value is not MISS:
                        await self.lock.release(key, token)
                        self._backfill(key, value, remaining)
                        return None, value
                    return token, MISS
                if not waited:
                    waited = True
                    self._m_wait_redis.inc()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)
                value, remaining = await self.l2.lookup_with_ttl(key)
                if value is not MISS:
                    self._backfill(key, value, remaining)
                    return None, value
            except Exception as exc:
                self._error("lock", exc)
                return None, MISS
            if time.monotonic() >= deadline:
                return None, MISS
