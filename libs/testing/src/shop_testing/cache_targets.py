"""Redis targets for cache tests: a client and a per-test namespace on a single Redis, then on the
session's Redis Cluster (`target`), the cluster alone (`cluster_target`), and a MultiLevelCache
factory on the target (`make_cache`). Shared by libs/common/tests/cache and examples/caching,
whose conftests import these fixtures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from shop_common.cache import MemoryCache, MultiLevelCache, RedisCache, RedisClient


@dataclass
class Target:
    """One Redis deployment under test: its client, URL, kind and a per-test namespace."""

    kind: str
    url: str
    client: RedisClient
    namespace: str
    extra_clients: list[RedisClient] = field(default_factory=list)

    def new_client(self) -> RedisClient:
        """Another client to the same deployment (a second 'instance'), closed after the test."""
        client: RedisClient = (
            RedisCluster.from_url(self.url)
            if self.kind == "cluster"
            else aioredis.from_url(self.url)
        )
        self.extra_clients.append(client)
        return client


L1_TTL = 60.0
"""make_cache's L1 TTL: a peer's L1 entry also goes away by itself after this long."""
COHERENCE_DEADLINE = L1_TTL / 2
"""How long a test waits for a pub/sub invalidation to reach a peer: well inside L1_TTL, so
what it sees is the message's doing, never the entry's expiry; no tighter, because delivery
time on a loaded machine has no bound of its own (a fixed couple of seconds was a guess)."""


class FakeClock:
    """A clock a test moves by hand (`clock.now += 5`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _open(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    url = request.getfixturevalue("redis_cluster_url" if kind == "cluster" else "redis_url")
    namespace = request.getfixturevalue("redis_namespace").rstrip(":")
    client: RedisClient = (
        RedisCluster.from_url(url) if kind == "cluster" else aioredis.from_url(url)
    )
    found = Target(kind, url, client, namespace)
    yield found
    if kind == "cluster":  # redis_namespace cleans the single Redis only
        await RedisCache(client, namespace).delete_pattern("*")
        for suffix in ("c:calls", "c:go", "c:calls:arrived"):  # one slot per DEL on a cluster
            await client.delete(f"{namespace}:{suffix}")
    for extra in found.extra_clients:
        await extra.aclose()
    await client.aclose()


@pytest_asyncio.fixture(params=["single", "cluster"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """A client and a unique namespace on a single Redis, then on the session's Redis Cluster."""
    async for found in _open(request.param, request):
        yield found


@pytest_asyncio.fixture
async def cluster_target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """The same on the Redis Cluster only (tests of cluster behaviour)."""
    async for found in _open("cluster", request):
        yield found


MakeCache = Callable[..., MultiLevelCache]


@pytest_asyncio.fixture
async def make_cache(target: Target) -> AsyncIterator[MakeCache]:
    """Factory of MultiLevelCache instances on the target; each is closed after the test."""
    made: list[MultiLevelCache] = []

    def make(
        client: RedisClient | None = None,
        *,
        l1_ttl: float | None = L1_TTL,
        coherence: bool = True,
        clock: Callable[[], float] | None = None,
        **options: object,
    ) -> MultiLevelCache:
        client = client or target.client
        l1 = MemoryCache(max_entries=1000, default_ttl=l1_ttl, clock=clock or time.monotonic)
        l2 = RedisCache(client, namespace=f"{target.namespace}:c", default_ttl=300.0)
        cache = MultiLevelCache(
            l1,
            l2,
            coherence_channel=f"{target.namespace}:inval" if coherence else None,
            redis=client,
            **options,  # type: ignore[arg-type]
        )
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()
