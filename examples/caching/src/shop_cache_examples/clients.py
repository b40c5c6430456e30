"""One way to open the Redis every cache piece uses: a single Redis or a Redis Cluster."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from shop_common.cache.redis import RedisClient
from shop_common.settings import ServiceSettings

__all__ = ["connect_redis", "redis_from_settings"]


def connect_redis(
    url: str, *, cluster: bool = False, socket_timeout: float | None = 1.0, **options: Any
) -> RedisClient:
    """A redis.asyncio client for url: RedisCluster when cluster (url names any node).

    The socket timeout turns a paused or half-dead Redis into a quick error the cache's
    breaker counts, instead of a hung caller.
    """
    options.setdefault("socket_timeout", socket_timeout)
    options.setdefault("socket_connect_timeout", socket_timeout)
    if cluster:
        return RedisCluster.from_url(url, **options)
    return aioredis.from_url(url, **options)


def redis_from_settings(settings: ServiceSettings, **options: Any) -> RedisClient:
    """The client settings ask for: REDIS_URL, and REDIS_CLUSTER=true for a cluster."""
    return connect_redis(settings.redis_url, cluster=settings.redis_cluster, **options)
