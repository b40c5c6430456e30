"""A product read through the catalog's multi-level cache against a read straight from PostgreSQL.

In-process, with the catalog's own adapters on a fresh database (migrated and seeded: 50
products) and a Redis namespace of its own:

  postgres   `SqlProductRepository.get(sku)`: one SELECT by primary key on a pooled connection
             (what a miss in both cache levels costs the loader)
  cache-l2   `ProductCache.get(sku, loader)` with this process's L1 copy dropped first: an L1
             miss served by Redis (what another instance, or a fresh process, sees)
  cache-l1   `ProductCache.get(sku, loader)` warm: the in-process hit (hot products)

Every read goes through `Product.from_dict` or the row mapping, so each contender hands back the
same Product. The contenders take turns round after round (postgres, l2, l1, postgres, ...),
each round `--concurrency` readers over every sku for `--seconds`, so machine noise hits them
alike. It prints each round, the medians, the ratios and one JSON line
{"bench": "catalog", ...}. Needs PostgreSQL (POSTGRES_URL) and Redis (REDIS_URL).

    uv run --all-packages python bench/bench_catalog.py --rounds 3 --seconds 3 --concurrency 16
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
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from catalog_service.adapters.product_cache import ProductCache, redis_client
from catalog_service.adapters.unit_of_work import SqlUnitOfWorkFactory, create_engine
from catalog_service.domain.product import Product
from catalog_service.settings import Settings
from shop_common.migrations import migrate
from sqlalchemy import text

Read = Callable[[str], Awaitable[Product | None]]
CONTENDERS = ("postgres", "cache-l2", "cache-l1")
YIELD_EVERY = 32


async def run_round(
    read: Read, skus: list[str], seconds: float, concurrency: int
) -> dict[str, float]:
    """`concurrency` readers, each walking the skus from its own offset, for `seconds`: reads/s
    and the median and p99 latency of one read."""
    laps: list[float] = []
    deadline = time.perf_counter() + seconds

    async def reader(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            sku = skus[i % len(skus)]
            start = time.perf_counter()
            product = await read(sku)
            laps.append(time.perf_counter() - start)
            if product is None or product.sku != sku:
                raise AssertionError(f"{sku}: read {product!r}")
            i += 1
            if i % YIELD_EVERY == 0:  # an L1 hit never waits: let the other readers (and the
                await asyncio.sleep(0)  # cache's coherence ping) run, as a server's loop would

    started = time.perf_counter()
    await asyncio.gather(*(reader(n * 7) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    laps.sort()
    return {
        "reads_per_s": len(laps) / elapsed,
        "p50_us": laps[len(laps) // 2] * 1e6,
        "p99_us": laps[min(len(laps) - 1, int(len(laps) * 0.99))] * 1e6,
    }


def database_url(admin: str, name: str) -> str:
    """The asyncpg SQLAlchemy URL of database `name` on the admin URL's server."""
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))


async def main(rounds: int, seconds: float, concurrency: int) -> None:
    admin = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"bench_catalog_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    settings = Settings(
        database_url=database_url(admin, name),
        redis_url=redis_url,
        product_cache_namespace=f"{name}:products",
        database_pool_size=concurrency,
        redis_max_connections=concurrency * 2,
        redis_timeout_seconds=5.0,
    )
    engine = create_engine(settings)
    cache = ProductCache(settings, redis_client(settings))
    try:
        await migrate("catalog_service", settings.database_url)
        products = SqlUnitOfWorkFactory(engine)().products
        async with engine.connect() as db:
            skus = [r[0] for r in await db.execute(text("SELECT sku FROM products ORDER BY sku"))]
        await cache.start()

        async def postgres(sku: str) -> Product | None:
            return await products.get(sku)

        async def through_l2(sku: str) -> Product | None:
            cache.levels.l1.delete(sku)
            return await cache.get(sku, lambda: products.get(sku))

        async def through_l1(sku: str) -> Product | None:
            return await cache.get(sku, lambda: products.get(sku))

        reads: dict[str, Read] = {
            "postgres": postgres,
            "cache-l2": through_l2,
            "cache-l1": through_l1,
        }
        for sku in skus:  # warm: every product in Redis and in this L1, every pool connection open
            await through_l1(sku)
        for read in reads.values():
            await run_round(read, skus, 0.3, concurrency)
        results: dict[str, list[dict[str, float]]] = {c: [] for c in CONTENDERS}
        for n in range(1, rounds + 1):
            for contender in CONTENDERS:
                figures = await run_round(reads[contender], skus, seconds, concurrency)
                results[contender].append(figures)
                print(
                    f"round {n} {contender:<9} {figures['reads_per_s']:>9.0f} reads/s"
                    f"  p50 {figures['p50_us']:>7.0f} µs  p99 {figures['p99_us']:>7.0f} µs",
                    flush=True,
                )
    finally:
        await cache.close()
        await engine.dispose()
        cleanup = redis_client(settings)
        keys = [k async for k in cleanup.scan_iter(match=f"{name}:*")]
        if keys:
            await cleanup.delete(*keys)
        await cleanup.aclose()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    median = {
        c: {k: statistics.median(r[k] for r in results[c]) for k in results[c][0]}
        for c in CONTENDERS
    }
    rps = {c: median[c]["reads_per_s"] for c in CONTENDERS}
    print(
        f"\nmedians over {rounds} rounds of {seconds:.0f} s, {concurrency} readers, {len(skus)} skus:"
    )
    for c in CONTENDERS:
        print(
            f"  {c:<9} {rps[c]:>9.0f} reads/s  p50 {median[c]['p50_us']:>7.0f} µs"
            f"  p99 {median[c]['p99_us']:>7.0f} µs"
        )
    l1_ratio = rps["cache-l1"] / rps["postgres"]
    l2_ratio = rps["cache-l2"] / rps["postgres"]
    print(f"  cache L1 / PostgreSQL {l1_ratio:.1f}x reads/s, cache L2 / PostgreSQL {l2_ratio:.2f}x")
    print(
        json.dumps(
            {
                "bench": "catalog",
                "reads_per_s": {c: round(rps[c]) for c in CONTENDERS},
                "p50_us": {c: round(median[c]["p50_us"]) for c in CONTENDERS},
                "p99_us": {c: round(median[c]["p99_us"]) for c in CONTENDERS},
                "ratio_l1_vs_postgres": round(l1_ratio, 2),
                "ratio_l2_vs_postgres": round(l2_ratio, 2),
                "rounds": rounds,
                "seconds": seconds,
                "concurrency": concurrency,
                "skus": len(skus),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seconds, args.concurrency))
