import asyncio

import pytest
import redis.asyncio as aioredis
from gateway.adapters.rate_limit import RedisSlidingWindow
from gateway.domain.errors import RateLimiterUnavailableError
from gateway.domain.routes import RateLimitConfig
from gateway.service_layer.rate_limits import UNCHECKED, RouteRateLimiter

pytestmark = pytest.mark.infra


async def test_exactly_limit_succeed_under_concurrency(
    redis_url: str, redis_namespace: str
) -> None:
    # A bounded pool that waits for a free connection, as the gateway uses; fail closed so that
    # a Redis error fails the test instead of being admitted.
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=20)
    client = aioredis.Redis(connection_pool=pool)
    limiter = RouteRateLimiter(RedisSlidingWindow(client, prefix=redis_namespace))
    config = RateLimitConfig(limit=25, window_seconds=60, fail="closed")
    try:
        decisions = await asyncio.gather(*(limiter.check("alice", "r", config) for _ in range(200)))
    finally:
        await client.aclose()
        await pool.aclose()
    assert sum(d.allowed for d in decisions) == 25
    refused = next(d for d in decisions if not d.allowed)
    headers = refused.headers()
    assert headers["RateLimit-Policy"] == '"default";q=25;w=60'
    assert headers["RateLimit"].startswith('"default";r=0;t=')
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_identities_and_routes_are_separate(
    redis_client: aioredis.Redis, redis_namespace: str
) -> None:
    limiter = RouteRateLimiter(RedisSlidingWindow(redis_client, prefix=redis_namespace))
    config = RateLimitConfig(limit=1, window_seconds=60)
    assert (await limiter.check("alice", "r", config)).allowed
    assert not (await limiter.check("alice", "r", config)).allowed
    assert (await limiter.check("bob", "r", config)).allowed
    assert (await limiter.check("alice", "other", config)).allowed


async def test_remaining_counts_down(redis_client: aioredis.Redis, redis_namespace: str) -> None:
    limiter = RouteRateLimiter(RedisSlidingWindow(redis_client, prefix=redis_namespace))
    config = RateLimitConfig(limit=3, window_seconds=10)
    remaining = [(await limiter.check("a", "r", config)).remaining for _ in range(3)]
    assert remaining == [2, 1, 0]


async def test_redis_down_follows_the_route_fail_mode(unused_tcp_port: int) -> None:
    # A port with nothing behind it: the shared Redis on 6379 is never touched.
    client = aioredis.from_url(f"redis://127.0.0.1:{unused_tcp_port}/0", socket_connect_timeout=0.5)
    route = f"r-{unused_tcp_port}"
    try:
        limiter = RouteRateLimiter(RedisSlidingWindow(client))
        opened = await limiter.check(
            "a", route, RateLimitConfig(limit=1, window_seconds=1, fail="open")
        )
        assert opened.allowed
        assert opened.headers() == {}
        with pytest.raises(RateLimiterUnavailableError):
            await limiter.check(
                "a", route, RateLimitConfig(limit=1, window_seconds=1, fail="closed")
            )
        # Neither outcome is silent: each uncounted request is counted by its fail mode.
        assert UNCHECKED.labels(route, "open")._value.get() == 1
        assert UNCHECKED.labels(route, "closed")._value.get() == 1
    finally:
        await client.aclose()
