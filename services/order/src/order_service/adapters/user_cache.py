"""OwnedCache, the user cache: L1 in process, L2 in Redis, L1 coherence across order instances.

The `order.user-changes` queue is shared by every order instance (competing consumers), so
the one instance that handles a user.updated deletes the key from Redis and, through the
coherence channel, from every other instance's L1. Missed pub/sub messages are bounded by
the L1 TTL (USER_CACHE_L1_TTL_SECONDS).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from shop_common.cache import MemoryCache, MultiLevelCache, RedisCache

from order_service.settings import Settings


class OwnedCache(MultiLevelCache):
    """The MultiLevelCache together with the Redis client it owns (closed with it)."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        namespace = settings.cache_namespace
        super().__init__(
            MemoryCache(
                settings.user_cache_l1_size,
                settings.user_cache_l1_ttl_seconds,
                name=f"{namespace}:l1",
            ),
            RedisCache(client, namespace, settings.user_cache_ttl_seconds),
            f"{namespace}:coherence",
            name=namespace,
            negative_ttl=settings.user_cache_negative_ttl_seconds,
        )
        self._client = client

    async def close(self) -> None:
        """Stop the coherence subscriber and close the Redis pool."""
        await super().close()
        await self._client.aclose()


async def build_user_cache(settings: Settings) -> OwnedCache:
    """Connect (lazily: Redis may be down, the cache then serves L1 and the loader) and start."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
    )
    cache = OwnedCache(settings, aioredis.Redis(connection_pool=pool))
    await cache.start()
    return cache
