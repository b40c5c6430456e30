"""Redis cut off mid-test: callers keep getting values, nothing escapes, then it recovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from shop_common.cache import MISS, MemoryCache, MultiLevelCache, RedisCache
from shop_common.resilience import CircuitState
from shop_devstack.faults import TcpProxy
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra

PING_INTERVAL = 0.2
SOCKET_TIMEOUT = 1.0
RESUBSCRIBE_BACKOFF_CAP = 2.0  # CoherenceChannel's retry backoff stops growing here
SAFETY = 5.0
"""Each wait below is a bound of the mechanism (ping interval, breaker recovery, retry backoff,
plus one socket timeout for a call caught mid-flight) times SAFETY for a loaded machine. It
only bounds a hang: each returns as soon as its condition holds."""


@pytest_asyncio.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    """A loopback proxy in front of the test Redis that the test can cut."""
    parts = urlsplit(redis_url)
    found = TcpProxy("redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    await found.start()
    yield found
    await found.stop()


async def test_cache_serves_through_an_outage_and_recovers(
    proxy: TcpProxy, redis_url: str, redis_namespace: str
) -> None:
    client = aioredis.from_url(proxy.url_for(redis_url), socket_timeout=SOCKET_TIMEOUT)
    direct = aioredis.from_url(redis_url)
    l2 = RedisCache(client, namespace=f"{redis_namespace}c")
    cache = MultiLevelCache(
        MemoryCache(default_ttl=60.0),
        l2,
        coherence_channel=f"{redis_namespace}inv",
        ping_interval=PING_INTERVAL,
    )
    loads = 0

    async def loader() -> dict[str, int]:
        nonlocal loads
        loads += 1
        return {"n": loads}

    try:
        await cache.start()
        assert await cache.get_or_load("user:1", loader) == {"n": 1}
        errors_before = (
            REGISTRY.get_sample_value(
                "cache_errors_total", {"cache": cache.name, "operation": "get"}
            )
            or 0.0
        )

        assert cache.l1.get("user:1") == {"n": 1}
        proxy.cut()
        coherence = cache.coherence
        assert coherence is not None
        # Given up after 2 x ping_interval without a reply, checked every ping_interval / 2.
        await eventually(
            lambda: not coherence.connected.is_set(),
            timeout=SAFETY * (2.5 * PING_INTERVAL + SOCKET_TIMEOUT),
            what="the lost invalidation channel noticed",
        )
        assert cache.l1.lookup("user:1") is MISS  # flushed: invalidations may have been missed
        # Every call returns a value (L1 or the loader); none raises.
        for i in range(20):
            assert await cache.get_or_load(f"user:{i % 4}", loader) is not None
            await cache.set(f"written:{i}", {"i": i})
            await cache.delete(f"gone:{i}")
            assert await cache.get(f"absent:{i}") is None
        assert l2.breaker.state is CircuitState.OPEN  # Redis is no longer hammered
        errors = REGISTRY.get_sample_value(
            "cache_errors_total", {"cache": cache.name, "operation": "get"}
        )
        assert errors is not None and errors > errors_before

        proxy.restore()

        async def written_after_recovery() -> bool:
            await cache.set("after", {"back": True})  # swallowed while the breaker is open
            return await direct.get(l2.key("after")) is not None

        await eventually(  # the breaker lets a probe through after its recovery_timeout
            written_after_recovery,
            timeout=SAFETY * (l2.breaker.config.recovery_timeout + SOCKET_TIMEOUT),
            interval=0.05,
            what="the cache writing to Redis after recovery",
        )
        assert l2.breaker.state is CircuitState.CLOSED
        await asyncio.wait_for(  # it retries with a capped backoff
            coherence.connected.wait(), SAFETY * (RESUBSCRIBE_BACKOFF_CAP + SOCKET_TIMEOUT)
        )
        assert coherence.subscriptions >= 2  # resubscribed (and flushed L1) after the cut
        await cache.delete("user:1")
        assert await cache.get_or_load("user:1", loader) == {"n": loads}
        assert await direct.get(l2.key("user:1")) is not None
    finally:
        await cache.close()
        await client.aclose()
        await direct.aclose()


async def test_cache_starts_and_serves_when_redis_is_down_from_the_start(
    proxy: TcpProxy, redis_url: str, redis_namespace: str
) -> None:
    proxy.cut()
    client = aioredis.from_url(proxy.url_for(redis_url), socket_timeout=SOCKET_TIMEOUT)
    cache = MultiLevelCache(
        MemoryCache(), RedisCache(client, f"{redis_namespace}d"), f"{redis_namespace}dinv"
    )

    async def loader() -> dict[str, bool]:
        return {"loaded": True}

    try:
        await cache.start()  # returns on the first failed attempt; never raises
        assert cache.coherence is not None and not cache.coherence.connected.is_set()
        assert await cache.get_or_load("user:1", loader) == {"loaded": True}
        proxy.restore()
        await asyncio.wait_for(  # subscribes by itself, retrying with a capped backoff
            cache.coherence.connected.wait(), SAFETY * (RESUBSCRIBE_BACKOFF_CAP + SOCKET_TIMEOUT)
        )
    finally:
        await cache.close()
        await client.aclose()
