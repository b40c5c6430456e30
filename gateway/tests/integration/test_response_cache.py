import pytest
import redis.asyncio as aioredis
from gateway.adapters.response_cache import RedisResponseCache
from gateway.domain.cache_rules import (
    CachedResponse,
    auth_scope,
    cache_key,
    etag_matches,
    may_serve_from_cache,
    may_store,
    strong_etag,
)

pytestmark = pytest.mark.infra


def test_key_separates_users_and_ignores_query_order() -> None:
    a = cache_key("p:", "GET", "/api/orders", [("b", "2"), ("a", "1")], auth_scope("1"))
    b = cache_key("p:", "GET", "/api/orders", [("a", "1"), ("b", "2")], auth_scope("1"))
    other_user = cache_key("p:", "GET", "/api/orders", [("a", "1"), ("b", "2")], auth_scope("2"))
    anon = cache_key("p:", "GET", "/api/orders", [("a", "1"), ("b", "2")], auth_scope(None))
    assert a == b
    assert len({a, other_user, anon}) == 3


def test_cache_control_rules() -> None:
    assert may_serve_from_cache(None)
    assert not may_serve_from_cache("no-cache")
    assert not may_serve_from_cache("max-age=0, no-store")
    assert may_store(200, None, {"Content-Type": "application/json"}, authenticated=False)
    assert not may_store(200, "no-store", {}, authenticated=True)
    assert not may_store(200, None, {"Cache-Control": "no-store"}, authenticated=True)
    assert not may_store(200, None, {"Cache-Control": "private"}, authenticated=False)
    assert may_store(200, None, {"Cache-Control": "private, max-age=5"}, authenticated=True)
    assert not may_store(404, None, {}, authenticated=True)
    assert not may_store(200, None, {"Set-Cookie": "s=1"}, authenticated=True)


def test_etag_matching() -> None:
    tag = strong_etag(b"body")
    assert etag_matches(tag, tag)
    assert etag_matches(f'"other", W/{tag}', tag)
    assert etag_matches("*", tag)
    assert not etag_matches('"other"', tag)
    assert not etag_matches(None, tag)


async def test_store_get_and_evict_one_users_entries(
    redis_client: aioredis.Redis, redis_namespace: str
) -> None:
    cache = RedisResponseCache(redis_client, prefix=redis_namespace)
    stored = CachedResponse(200, (("Content-Type", "application/json"),), b'{"id":1}', '"e1"')
    mine = cache_key(cache.prefix, "GET", "/api/users/1", [], auth_scope("1"))
    theirs = cache_key(cache.prefix, "GET", "/api/users/1", [], auth_scope("2"))
    await cache.put(mine, auth_scope("1"), stored, 30)
    await cache.put(theirs, auth_scope("2"), stored, 30)
    assert await cache.get(mine) == stored
    assert await cache.evict_scope(auth_scope("1")) == 1
    assert await cache.get(mine) is None
    assert await cache.get(theirs) == stored
