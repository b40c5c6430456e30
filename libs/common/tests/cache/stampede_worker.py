"""A second process for the cross-process stampede test (run with `python stampede_worker.py`).

argv: kind url namespace key counter_key go_key callers. Prints "ready", waits for go_key,
then makes `callers` concurrent get_or_load calls whose loader INCRs counter_key.
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.asyncio.cluster import RedisCluster
from shop_common.cache import MemoryCache, MultiLevelCache, RedisCache, RedisClient


async def main(
    kind: str, url: str, namespace: str, key: str, counter: str, go: str, n: int
) -> None:
    client: RedisClient = (
        RedisCluster.from_url(url) if kind == "cluster" else aioredis.from_url(url)
    )
    cache = MultiLevelCache(MemoryCache(), RedisCache(client, namespace))

    async def loader() -> dict[str, str]:
        await client.incr(counter)
        while int(await client.get(f"{counter}:arrived") or 0) < 2:  # the test process is in
            await asyncio.sleep(0.005)
        await asyncio.sleep(1.0)  # ...and has met the lock by now (slow, loaded CI VMs)
        return {"by": "worker"}

    print("ready", flush=True)
    while not await client.exists(go):
        await asyncio.sleep(0.002)
    await client.incr(f"{counter}:arrived")
    results = await asyncio.gather(*(cache.get_or_load(key, loader) for _ in range(n)))
    waits = REGISTRY.get_sample_value(
        "cache_stampede_waits_total", {"cache": cache.name, "scope": "redis"}
    )
    print(json.dumps({"by": sorted({r["by"] for r in results if r}), "waits": waits or 0}))
    await client.aclose()


if __name__ == "__main__":
    kind, url, namespace, key, counter, go, n = sys.argv[1:8]
    asyncio.run(main(kind, url, namespace, key, counter, go, int(n)))
