"""Caches: in-process LRU, Redis (single or Cluster), multi-level with coherence, patterns."""

from shop_common.cache.base import MISS, NEGATIVE
from shop_common.cache.clients import connect_redis, redis_from_settings
from shop_common.cache.decorators import CacheAside, cached, key_for
from shop_common.cache.durable_writebehind import RedisWriteBehind
from shop_common.cache.invalidation import CacheInvalidator, InvalidationError
from shop_common.cache.levels import LayeredCache
from shop_common.cache.memory import MemoryCache
from shop_common.cache.multilevel import MultiLevelCache
from shop_common.cache.patterns import RefreshAhead, WriteThrough
from shop_common.cache.redis import RedisCache, RedisClient, is_redis_outage, redis_breaker
from shop_common.cache.serializers import (
    JsonSerializer,
    MsgpackSerializer,
    PickleSerializer,
    Serializer,
)
from shop_common.cache.stampede import RedisLoadLock, SingleFlight
from shop_common.cache.writebehind import WriteBehind, WriteBehindError

__all__ = (
    "MISS",
    "NEGATIVE",
    "CacheAside",
    "CacheInvalidator",
    "InvalidationError",
    "JsonSerializer",
    "LayeredCache",
    "MemoryCache",
    "MsgpackSerializer",
    "MultiLevelCache",
    "PickleSerializer",
    "RedisCache",
    "RedisClient",
    "RedisLoadLock",
    "RedisWriteBehind",
    "RefreshAhead",
    "Serializer",
    "SingleFlight",
    "WriteBehind",
    "WriteBehindError",
    "WriteThrough",
    "cached",
    "connect_redis",
    "is_redis_outage",
    "key_for",
    "redis_breaker",
    "redis_from_settings",
)
