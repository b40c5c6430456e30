"""Two cache levels kept together: in-process L1, Redis L2, pub/sub coherence between L1s.

Redis trouble never reaches the caller: reads fall back to L1, writes to L1; errors are
counted and logged, and the RedisCache's breaker stops calls while Redis is down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from shop_common.cache.base import MISS, NEGATIVE
from shop_common.cache.coherence import CoherenceChannel
from shop_common.cache.memory import MemoryCache
from shop_common.cache.metrics import CACHE_ERRORS, CACHE_EVICTIONS, lookup_counters
from shop_common.cache.redis import RedisCache, RedisClient
from shop_common.logging import get_logger
from shop_common.resilience import CircuitOpenError

__all__ = ["LayeredCache"]

_log = get_logger(__name__)


class LayeredCache:
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
        ping_interval: float = 1.0,
    ) -> None:
        self.l1 = l1
        self.l2 = l2
        self.name = name or l2.namespace
        self.coherence = (
            CoherenceChannel(
                redis or l2.client,
                coherence_channel,
                on_keys=self._evict_l1,
                on_flush=self._flush_l1,
                on_error=self.count_error,
                ping_interval=ping_interval,
            )
            if coherence_channel
            else None
        )
        n = self.name
        # Counted in Prometheus and marked on the current span (cache.hit / cache.miss).
        self._m_hit1, self._m_hit2, self._m_miss1, self._m_miss2 = lookup_counters(n)
        self._m_invalidated = CACHE_EVICTIONS.labels(n, "invalidated")
        # Bumped by every write and invalidation; a read that spans a bump does not fill L1.
        self.generation = 0

    # ----- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the coherence subscriber (returns once subscribed, or after 5 s if Redis is down)."""
        if self.coherence is not None:
            await self.coherence.start()

    async def close(self) -> None:
        """Stop the coherence subscriber."""
        if self.coherence is not None:
            await self.coherence.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- helpers -------------------------------------------------------------------------
    def count_error(self, operation: str, exc: BaseException | None = None) -> None:
        """Count (and log) a backend error that was kept from the caller."""
        CACHE_ERRORS.labels(self.name, operation).inc()
        if exc is not None and not isinstance(exc, CircuitOpenError):  # open: counted only
            _log.warning("cache_backend_error", cache=self.name, op=operation, error=repr(exc))

    def _evict_l1(self, keys: Iterable[str]) -> None:
        self.generation += 1
        evicted = sum(self.l1.delete(key) for key in keys)
        self._m_invalidated.inc(evicted)

    def _flush_l1(self) -> None:
        self.generation += 1
        self._m_invalidated.inc(len(self.l1))
        self.l1.clear()

    def _l1_ttl(self, ttl: float | None) -> float | None:
        limits = [t for t in (ttl, self.l1.default_ttl) if t is not None]
        return min(limits) if limits else None

    async def _l2_lookup(self, key: str) -> tuple[Any, float | None]:
        try:
            return await self.l2.lookup_with_ttl(key)
        except Exception as exc:
            self.count_error("get", exc)
            return MISS, None

    async def _publish(self, keys: Iterable[str]) -> None:
        if self.coherence is not None:
            try:
                await self.coherence.publish_keys(keys)
            except Exception as exc:
                self.count_error("publish", exc)

    def _backfill(self, key: str, value: Any, remaining: float | None, since: int) -> None:
        # A value read before an invalidation that arrived meanwhile may be the old one: skip L1.
        if self.generation == since:
            self.l1.set(key, value, self._l1_ttl(remaining))

    # ----- reads ---------------------------------------------------------------------------
    async def lookup(self, key: str) -> Any:
        """The value, NEGATIVE or MISS, reading L1 then L2 (and backfilling L1)."""
        value = self.l1.lookup(key)
        if value is not MISS:
            self._m_hit1.inc()
            return value
        self._m_miss1.inc()
        since = self.generation
        value, remaining = await self._l2_lookup(key)
        if value is MISS:
            self._m_miss2.inc()
            return MISS
        self._m_hit2.inc()
        self._backfill(key, value, remaining, since)
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
                self.count_error("set", exc)
            else:
                raise
        self.generation += 1
        self.l1.set(key, value, self._l1_ttl(ttl if ttl is not None else self.l2.default_ttl))
        await self._publish([key])

    async def delete(self, *keys: str) -> None:
        """Delete from L2 and L1 here and in every other instance's L1."""
        self._evict_l1(keys)
        try:
            await self.l2.delete(*keys)
        except Exception as exc:
            self.count_error("delete", exc)
        await self._publish(keys)

    async def invalidate_pattern(self, pattern: str) -> int:
        """Delete every L2 key matching a glob (SCAN on every primary) and flush all L1s."""
        self._flush_l1()
        deleted = 0
        try:
            deleted = await self.l2.delete_pattern(pattern)
        except Exception as exc:
            self.count_error("delete_pattern", exc)
        if self.coherence is not None:
            try:
                await self.coherence.publish_flush()
            except Exception as exc:
                self.count_error("publish", exc)
        return deleted
