"""Cache latency: L1 hit, L2 hit, multi-level read (L1 miss → L2 hit) beside raw redis GET.

The Redis contenders take turns call by call (raw, L2, multi, raw, L2, multi...) on the same
key and value and each round reports the median per call (wall time), so machine noise hits
them alike; the ratios are what to compare. The in-memory contenders (L1 hit, bare call,
breaker call) take turns in batches of 1000 and are timed in process CPU time. Also the circuit breaker's
overhead per call against a bare call. Needs a Redis (REDIS_URL, default 127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from shop_common.cache import JsonSerializer, MemoryCache, MultiLevelCache, RedisCache
from shop_common.resilience import BreakerConfig, CircuitBreaker

TARGET_L2_RATIO = 1.3  # L2 hit / raw GET
TARGET_L1_SPEEDUP = 50.0  # raw GET / L1 hit
TARGET_BREAKER_US = 5.0
VALUE = {"id": 42, "email": "ada@example.com", "name": "Ada Lovelace", "roles": ["customer"]}


async def timed(
    n: int, op: Callable[[], Awaitable[object]], clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per call over n sequential calls."""
    start = clock()
    for _ in range(n):
        await op()
    return (clock() - start) / n


async def interleaved(n: int, ops: dict[str, Callable[[], Awaitable[object]]]) -> dict[str, float]:
    """Median seconds per call of each op, the ops taking turns call by call (A B C A B C)."""
    laps: dict[str, list[float]] = {name: [] for name in ops}
    clock = time.perf_counter
    for _ in range(n):
        for name, op in ops.items():
            start = clock()
            await op()
            laps[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in laps.items()}


async def dependency() -> int:
    return 1


async def main(quick: bool) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.from_url(url)
    namespace = f"bench_{uuid.uuid4().hex[:8]}"
    l2 = RedisCache(client, namespace, default_ttl=300.0, serializer=JsonSerializer())
    l1 = MemoryCache(max_entries=10_000, default_ttl=30.0)
    cache = MultiLevelCache(l1, l2)
    await l2.set("user:42", VALUE)
    raw_key = l2.key("user:42")
    n_redis, batches, rounds = (1_000, 50, 3) if quick else (3_000, 200, 6)

    async def raw_get() -> object:
        return await client.get(raw_key)

    async def l2_hit() -> object:
        return await l2.get("user:42")

    async def multi_read() -> object:
        l1.delete("user:42")
        return await cache.get("user:42")

    async def l1_hit() -> object:
        return await cache.get("user:42")

    breaker = CircuitBreaker("bench-cache", BreakerConfig())

    async def bare() -> object:
        return await dependency()

    async def guarded() -> object:
        return await breaker.call(dependency)

    samples: dict[str, list[float]] = {k: [] for k in ("raw", "l2", "multi", "l1", "bare", "br")}
    try:
        assert await l1_hit() == VALUE and await l2_hit() == VALUE
        await timed(200, raw_get)  # warm the connection pool
        for i in range(rounds):
            medians = await interleaved(
                n_redis, {"raw": raw_get, "l2": l2_hit, "multi": multi_read}
            )
            for name, seconds in medians.items():
                samples[name].append(seconds)
            await l1_hit()
            # In-memory contenders: batches of 1000 calls taking turns; median of batch means.
            batch: dict[str, list[float]] = {"l1": [], "bare": [], "br": []}
            for _ in range(batches):
                for name, op in (("l1", l1_hit), ("bare", bare), ("br", guarded)):
                    # CPU time: no I/O here, and wall time on a shared 2-core VM counts
                    # other processes' turns (steal) as if they were the breaker's cost.
                    batch[name].append(await timed(1000, op, time.process_time))
            for name, values in batch.items():
                samples[name].append(statistics.median(values))
            print(
                f"round {i + 1}: raw GET {samples['raw'][-1] * 1e6:.1f} µs, "
                f"L2 hit {samples['l2'][-1] * 1e6:.1f} µs, "
                f"multi-level (L1 miss→L2) {samples['multi'][-1] * 1e6:.1f} µs, "
                f"L1 hit {samples['l1'][-1] * 1e6:.2f} µs, "
                f"breaker +{(samples['br'][-1] - samples['bare'][-1]) * 1e6:.2f} µs/call",
                flush=True,
            )
    finally:
        await l2.delete("user:42")
        await client.aclose()

    us = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    for name, label in (
        ("raw", "raw GET"),
        ("l2", "L2 hit"),
        ("multi", "multi-level read"),
        ("l1", "L1 hit"),
    ):
        print(f"{label:>17}: {us[name]:8.2f} µs/op  {1e6 / us[name]:>12,.0f} ops/s")
    result = {
        "bench": "cache",
        "raw_get_us": round(us["raw"], 2),
        "l2_hit_us": round(us["l2"], 2),
        "multi_level_read_us": round(us["multi"], 2),
        "l1_hit_us": round(us["l1"], 3),
        "raw_get_ops_s": round(1e6 / us["raw"]),
        "l2_hit_ops_s": round(1e6 / us["l2"]),
        "multi_level_read_ops_s": round(1e6 / us["multi"]),
        "l1_hit_ops_s": round(1e6 / us["l1"]),
        "l2_to_raw_ratio": round(us["l2"] / us["raw"], 3),
        "multi_to_raw_ratio": round(us["multi"] / us["raw"], 3),
        "l1_speedup_vs_raw": round(us["raw"] / us["l1"], 1),
        "breaker_overhead_us": round(us["br"] - us["bare"], 3),
        "targets": {
            "l2_to_raw_ratio_max": TARGET_L2_RATIO,
            "l1_speedup_min": TARGET_L1_SPEEDUP,
            "breaker_overhead_us_max": TARGET_BREAKER_US,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-second run")
    asyncio.run(main(parser.parse_args().quick))
