"""OwnedCache, the order service's two caches (users, prices): L1 in process, L2 in Redis, L1
coherence across order instances.

The `order.user-changes` and `order.catalog-changes` queues are shared by every order instance
(competing consumers), so the one instance that handles a user.updated or a
product.price_changed deletes the key from Redis and, through the coherence channel, from every
other instance's L1. Missed pub/sub messages are bounded by the L1 TTL
(USER_CACHE_L1_TTL_SECONDS, PRICE_CACHE_L1_TTL_SECONDS).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from shop_common.cache import MemoryCache, MultiLevelCache, RedisCache

from order_service.settings import Settings


@dataclass(frozen=True, slots=True)
class CacheShape:
    """Where one cache lives in Redis and how long its entries last."""

    namespace: str
    ttl: float
    negative_ttl: float
    l1_ttl: float
    l1_size: int

    @classmethod
    def users(cls, settings: Settings) -> CacheShape:
        """The user cache's (USER_CACHE_*)."""
        return cls(
            settings.cache_namespace,
            settings.user_cache_ttl_seconds,
            settings.user_cache_negative_ttl_seconds,
            settings.user_cache_l1_ttl_seconds,
            settings.user_cache_l1_size,
        )

    @classmethod
    def prices(cls, settings: Settings) -> CacheShape:
        """The price cache's (PRICE_CACHE_*)."""
        return cls(
            settings.price_cache_namespace,
            settings.price_cache_ttl_seconds,
            settings.price_cache_negative_ttl_seconds,
            settings.price_cache_l1_ttl_seconds,
            settings.price_cache_l1_size,
        )


class OwnedCache(MultiLevelCache):
    """The MultiLevelCache together with the Redis client it owns (closed with it)."""

    def __init__(self, shape: CacheShape, client: aioredis.Redis) -> None:
        namespace = shape.namespace
        super().__init__(
            MemoryCache(shape.l1_size, shape.l1_ttl, name=f"{namespace}:l1"),
            RedisCache(client, namespace, shape.ttl),
            f"{namespace}:coherence",
            name=namespace,
            negative_ttl=shape.negative_ttl,
        )
        self._client = client

    async def close(self) -> None:
        """Stop the coherence subscriber and close the Redis pool."""
        await super().close()
        await self._client.aclose()


async def build_cache(settings: Settings, shape: CacheShape) -> OwnedCache:
    """Connect (lazily: Redis may be down, the cache then serves L1 and the loader) and start."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
    )
    cache = OwnedCache(shape, aioredis.Redis(connection_pool=pool))
    await cache.start()
    return cache


async def build_user_cache(settings: Settings) -> OwnedCache:
    """The user cache, started."""
    return await build_cache(settings, CacheShape.users(settings))
