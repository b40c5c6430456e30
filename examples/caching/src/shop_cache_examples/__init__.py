"""Cache patterns moved out of shop_common.cache because no running feature uses them yet.

Each module builds on shop_common.cache (LayeredCache, MultiLevelCache, RedisCache) and is
tested against real Redis in examples/caching/tests/. See examples/caching/README.md.
"""

from shop_cache_examples.clients import connect_redis, redis_from_settings
from shop_cache_examples.decorators import CacheAside, cached, key_for
from shop_cache_examples.durable_writebehind import RedisWriteBehind
from shop_cache_examples.invalidation import CacheInvalidator, InvalidationError
from shop_cache_examples.serializers import MsgpackSerializer, PickleSerializer
from shop_cache_examples.write_through import WriteThrough

__all__ = (
    "CacheAside",
    "CacheInvalidator",
    "InvalidationError",
    "MsgpackSerializer",
    "PickleSerializer",
    "RedisWriteBehind",
    "WriteThrough",
    "cached",
    "connect_redis",
    "key_for",
    "redis_from_settings",
)
