"""Redis Cluster specifics: multi-key calls across slots, SCAN on every primary, failover."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from shop_common.cache import (
    NEGATIVE,
    MemoryCache,
    MultiLevelCache,
    RedisCache,
)
from shop_testing.redis_cluster import LocalRedisCluster, RedisClusterError
from shop_testing.wait import eventually

from .conftest import Target

pytestmark = pytest.mark.infra


async def keys_per_primary(cluster: LocalRedisCluster, match: str) -> dict[int, int]:
    """How many keys matching a pattern each primary holds (scanned node by node)."""
    counts: dict[int, int] = {}
    for port in cluster.primary_ports():
        node = aioredis.Redis(host="127.0.0.1", port=port)
        counts[port] = len([k async for k in node.scan_iter(match=match, count=500)])
        await node.aclose()
    return counts


def serving(cluster: LocalRedisCluster, slot: int) -> int | None:
    """Port of the primary serving slot, None while no live primary does (mid-failover)."""
    try:
        return cluster.primary_for_slot(slot)
    except RedisClusterError:
        return None


@pytest.fixture
def local_cluster(redis_cluster: LocalRedisCluster | None) -> LocalRedisCluster:
    if redis_cluster is None:
        pytest.skip("REDIS_CLUSTER_URL names a cluster this test may not inspect or break")
    return redis_cluster


async def test_get_many_and_set_many_span_slots(target: Target) -> None:
    cache = RedisCache(target.client, namespace=f"{target.namespace}:m")
    items = {f"user:{i}": {"i": i} for i in range(100)}
    await cache.set_many(items, ttl=60.0)
    await cache.set_negative("user:gone", 10.0)
    found = await cache.get_many([*items, "user:gone", "user:never"])
    assert {k: v for k, v in found.items() if k != "user:gone"} == items
    assert found["user:gone"] is NEGATIVE and "user:never" not in found
    remaining = await cache.remaining_ttl("user:42")
    assert remaining is not None and 59.0 < remaining <= 60.0
    if isinstance(target.client, RedisCluster):
        slots = {target.client.keyslot(cache.key(k)) for k in items}
        assert len(slots) > 50  # really spread over the cluster, not one hash tag


async def test_pattern_invalidation_scans_every_primary(
    cluster_target: Target, local_cluster: LocalRedisCluster
) -> None:
    target = cluster_target
    cache = RedisCache(target.client, namespace=f"{target.namespace}:p")
    await cache.set_many({f"user:{i}": {"i": i} for i in range(60)})
    await cache.set("order:1", {"o": 1})
    before = await keys_per_primary(local_cluster, f"{cache.namespace}:{{user:*")
    assert len(before) == 3 and all(n > 0 for n in before.values()) and sum(before.values()) == 60
    assert await cache.delete_pattern("user:*") == 60
    after = await keys_per_primary(local_cluster, f"{cache.namespace}:{{user:*")
    assert sum(after.values()) == 0
    assert await cache.get("order:1") == {"o": 1}


async def test_killed_primary_callers_keep_getting_values_then_cache_resumes(
    cluster_target: Target, local_cluster: LocalRedisCluster
) -> None:
    target = cluster_target
    client = RedisCluster.from_url(local_cluster.url, socket_timeout=1.0)
    l2 = RedisCache(client, namespace=f"{target.namespace}:f")
    cache = MultiLevelCache(
        MemoryCache(default_ttl=60.0), l2, f"{target.namespace}:finv", ping_interval=0.2
    )
    loads = 0

    async def loader() -> dict[str, int]:
        nonlocal loads
        loads += 1
        return {"n": loads}

    keys = [f"user:{i}" for i in range(30)]
    await cache.start()
    for key in keys:
        assert await cache.get_or_load(key, loader) is not None
    slot = client.keyslot(l2.key("user:0"))
    victim = local_cluster.primary_for_slot(slot)
    local_cluster.kill(victim)
    try:
        promoted = False

        async def resumed() -> bool:
            nonlocal promoted
            for key in keys:  # callers always get a value, never an exception
                assert await cache.get_or_load(key, loader) is not None
            promoted = promoted or serving(local_cluster, slot) not in (None, victim)
            if not promoted:
                return False
            await cache.set("user:0", {"n": -1})
            try:
                return bool(await l2.get("user:0") == {"n": -1})
            except Exception:  # the breaker or the client still catching up
                return False

        # A replica takes over once its primary has been unreachable for node_timeout and an
        # election ran: a few node timeouts. x10 for a loaded machine.
        await eventually(
            resumed,
            timeout=10 * 3 * local_cluster.node_timeout_ms / 1000,
            interval=0.05,
            what="the cache resumed on the promoted replica",
        )
        assert local_cluster.primary_for_slot(slot) != victim
        cache.l1.clear()
        assert await cache.get("user:0") == {"n": -1}  # read back through L2 on the new primary
    finally:
        await cache.close()
        await client.aclose()
        local_cluster.restart(victim)
