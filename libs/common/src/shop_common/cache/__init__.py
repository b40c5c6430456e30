"""Caches: in-process LRU, Redis (single or Cluster), multi-level with coherence, refresh-ahead.

Every name exported here is used by a running feature (the order service's user cache and
lookup, the catalog's product cache and view counters; tests/consistency/test_cache_exports.py
keeps it so). Write-through, durable write-behind,
`@cached`, event-driven invalidation, more serializers and the Redis client helpers are
examples until a service runs them: examples/caching/ (package shop_cache_examples).
"""

from shop_common.cache.base import MISS, NEGATIVE
from shop_common.cache.levels import LayeredCache
from shop_common.cache.memory import MemoryCache
from shop_common.cache.multilevel import MultiLevelCache
from shop_common.cache.patterns import RefreshAhead
from shop_common.cache.redis import RedisCache, RedisClient, is_redis_outage, redis_breaker
from shop_common.cache.serializers import JsonSerializer, Serializer
from shop_common.cache.stampede import RedisLoadLock, SingleFlight
from shop_common.cache.writebehind import WRITE_BEHIND_RETRY, WriteBehind, WriteBehindError

__all__ = (
    "MISS",
    "NEGATIVE",
    "WRITE_BEHIND_RETRY",
    "JsonSerializer",
    "LayeredCache",
    "MemoryCache",
    "MultiLevelCache",
    "RedisCache",
    "RedisClient",
    "RedisLoadLock",
    "RefreshAhead",
    "Serializer",
    "SingleFlight",
    "WriteBehind",
    "WriteBehindError",
    "is_redis_outage",
    "redis_breaker",
)
