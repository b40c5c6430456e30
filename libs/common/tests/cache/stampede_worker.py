"""A second process for the cross-process stampede test (run with `python stampede_worker.py`).

argv: kind url namespace key counter_key go_key callers lock_ttl lock_wait. Prints "ready", waits for go_key,
then makes `callers` concurrent get_or_load calls whose loader INCRs counter_key. Sets
`<counter_key>:waiting:worker` once one of its calls waits on the other process's Redis lock; a
loader here holds the lock until it sees `<counter_key>:waiting:test`.
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
    kind: str,
    url: str,
    namespace: str,
    key: str,
    counter: str,
    go: str,
    n: int,
    lock_ttl: float,
    lock_wait: float,
) -> None:
    client: RedisClient = (
        RedisCluster.from_url(url) if kind == "cluster" else aioredis.from_url(url)
    )
    cache = MultiLevelCache(
        MemoryCache(), RedisCache(client, namespace), lock_ttl=lock_ttl, lock_wait=lock_wait
    )

    def waits() -> float:
        value = REGISTRY.get_sample_value(
            "cache_stampede_waits_total", {"cache": cache.name, "scope": "redis"}
        )
        return value or 0.0

    async def signal_waiting() -> None:
        """Tell the test process, through Redis, once a call here waits on its lock."""
        while waits() == 0:
            await asyncio.sleep(0.002)
        await client.set(f"{counter}:waiting:worker", 1, ex=60)

    async def loader() -> dict[str, str]:
        await client.incr(counter)
        # Hold the lock until the test process is seen waiting on it (an observed overlap,
        # not a sleep); bounded, so a broken lock fails the test's assertions, not a hang.
        for _ in range(6000):
            if await client.exists(f"{counter}:waiting:test"):
                break
            await asyncio.sleep(0.005)
        return {"by": "worker"}

    print("ready", flush=True)
    while not await client.exists(go):
        await asyncio.sleep(0.002)
    watcher = asyncio.create_task(signal_waiting())
    results = await asyncio.gather(*(cache.get_or_load(key, loader) for _ in range(n)))
    watcher.cancel()
    waits_seen = waits()
    print(json.dumps({"by": sorted({r["by"] for r in results if r}), "waits": waits_seen}))
    await client.aclose()


if __name__ == "__main__":
    kind, url, namespace, key, counter, go, n, lock_ttl, lock_wait = sys.argv[1:10]
    asyncio.run(
        main(kind, url, namespace, key, counter, go, int(n), float(lock_ttl), float(lock_wait))
    )
