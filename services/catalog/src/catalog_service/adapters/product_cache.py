"""The product cache: L1 in process, L2 in Redis, L1 coherence across catalog instances.

- read-through: `get(sku, loader)` is MultiLevelCache.get_or_load (a miss in both levels loads
  once per process (single-flight) and once across processes (a Redis lock)); an unknown sku
  is cached as "not found" for PRODUCT_CACHE_NEGATIVE_TTL_SECONDS;
- refresh-ahead: through shop_common.cache.RefreshAhead, a product read after
  PRODUCT_CACHE_REFRESH_AFTER of its TTL is reloaded in the background, so a hot product never
  makes a reader wait on the database;
- write-through: `put(product)` after a committed price change sets L2 and this L1 and tells
  every other instance (coherence channel) to drop its L1 copy.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from shop_common.cache import MemoryCache, MultiLevelCache, RedisCache, RefreshAhead

from catalog_service.domain.product import Product
from catalog_service.service_layer.ports import ProductLoader
from catalog_service.settings import Settings


def redis_client(settings: Settings) -> aioredis.Redis:
    """A Redis client with short timeouts (connects lazily: Redis may be down)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
    )
    return aioredis.Redis(connection_pool=pool)


class ProductCache:
    """service_layer.ports.ProductCache on a MultiLevelCache with refresh-ahead."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        namespace = settings.cache_namespace
        self.ttl = settings.product_cache_ttl_seconds
        self.levels = MultiLevelCache(
            MemoryCache(
                settings.product_cache_l1_size,
                settings.product_cache_l1_ttl_seconds,
                name=f"{namespace}:l1",
            ),
            RedisCache(client, namespace, self.ttl),
            f"{namespace}:coherence",
            client,
            name=namespace,
            negative_ttl=settings.product_cache_negative_ttl_seconds,
        )
        self.ahead = RefreshAhead(self.levels, self.ttl, settings.product_cache_refresh_after)
        self._client = client

    async def start(self) -> None:
        """Subscribe to the coherence channel."""
        await self.levels.start()

    async def close(self) -> None:
        """Wait for refreshes, stop the subscriber, close the Redis pool."""
        await self.ahead.wait_idle()
        await self.levels.close()
        await self._client.aclose()

    async def get(self, sku: str, loader: ProductLoader) -> Product | None:
        async def load() -> dict[str, str] | None:
            product = await loader()
            return None if product is None else product.to_dict()

        cached = await self.ahead.get(sku, load)
        return None if cached is None else Product.from_dict(cached)

    async def put(self, product: Product) -> None:
        await self.levels.set(product.sku, product.to_dict(), self.ttl)
