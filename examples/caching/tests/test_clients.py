"""connect_redis / redis_from_settings: one way to open a single Redis or a Redis Cluster
(moved here from libs/common/tests/cache/test_cache_cluster.py)."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster
from shop_cache_examples import redis_from_settings
from shop_common.cache import RedisCache
from shop_common.settings import ServiceSettings

pytestmark = pytest.mark.infra


async def test_settings_choose_single_redis_or_cluster(
    redis_url: str, redis_cluster_url: str, redis_namespace: str
) -> None:
    single = redis_from_settings(ServiceSettings(redis_url=redis_url))
    cluster = redis_from_settings(ServiceSettings(redis_url=redis_cluster_url, redis_cluster=True))
    try:
        assert not isinstance(single, RedisCluster) and isinstance(cluster, RedisCluster)
        for client in (single, cluster):
            cache = RedisCache(client, namespace=f"{redis_namespace}set")
            await cache.set("k", {"ok": True}, ttl=5.0)
            assert await cache.get("k") == {"ok": True}
            await cache.delete("k")
    finally:
        await single.aclose()
        await cluster.aclose()
