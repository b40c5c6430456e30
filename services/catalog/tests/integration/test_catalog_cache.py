"""The product cache against real Redis and PostgreSQL: read-through, stampede protection across
two instances, refresh-ahead, write-through on a price change, coherence across instances, and
the view counters written behind to PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra


def sample(name: str, cache: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"cache": cache, **labels}) or 0.0


async def name_of(catalog: Any, sku: str) -> str:
    response = await catalog.client.get(f"/products/{sku}")
    assert response.status_code == 200
    return str(response.json()["name"])


async def test_read_through_serves_the_second_read_from_the_cache(catalog: Any) -> None:
    namespace = catalog.settings.cache_namespace
    assert await name_of(catalog, "BOOK-005") == "Night Sky Almanac"
    # The database changes behind the cache's back: the cached product still answers.
    await catalog.execute("UPDATE products SET name = 'Changed' WHERE sku = 'BOOK-005'")
    assert await name_of(catalog, "BOOK-005") == "Night Sky Almanac"
    assert sample("cache_loads_total", namespace, outcome="value") == 1
    assert sample("cache_hits_total", namespace, level="l1") >= 1
    assert await catalog.running.cache.levels.l2.get("BOOK-005") is not None


async def test_an_unknown_sku_is_cached_as_not_found(catalog: Any) -> None:
    namespace = catalog.settings.cache_namespace
    for _ in range(3):
        assert (await catalog.client.get("/products/NOPE-404")).status_code == 404
    assert sample("cache_loads_total", namespace, outcome="none") == 1


async def test_a_stampede_on_two_instances_loads_once(start_app: Any) -> None:
    first, second = await start_app(), await start_app()
    namespace = first.settings.cache_namespace

    async def read(app: Any) -> int:
        return (await app.client.get("/products/OUTD-001")).status_code

    statuses = await asyncio.gather(*(read(app) for app in (first, second) for _ in range(25)))
    assert set(statuses) == {200}
    assert sample("cache_loads_total", namespace, outcome="value") == 1


async def test_refresh_ahead_reloads_a_hot_product_without_a_miss(start_app: Any) -> None:
    catalog = await start_app(product_cache_ttl_seconds=5, product_cache_refresh_after=0.05)
    namespace = catalog.settings.cache_namespace
    assert await name_of(catalog, "TOYS-001") == "Wooden Train Set"
    misses = sample("cache_misses_total", namespace, level="l1")
    await catalog.execute("UPDATE products SET name = 'Steam Train Set' WHERE sku = 'TOYS-001'")

    async def refreshed() -> bool:
        return await name_of(catalog, "TOYS-001") == "Steam Train Set"

    await eventually(refreshed, timeout=4)
    # The new name arrived through a background reload, never through a miss of a reader.
    assert sample("cache_misses_total", namespace, level="l1") == misses
    assert sample("cache_loads_total", namespace, outcome="value") >= 2


async def test_a_price_change_is_written_through_and_seen_by_every_instance(
    start_app: Any, as_admin: dict[str, str]
) -> None:
    first, second = await start_app(), await start_app()
    for app in (first, second):  # both hold BOOK-006 in their L1
        assert (await app.client.get("/products/BOOK-006")).json()["price"] != "3.10"
    loads = sample("cache_loads_total", first.settings.cache_namespace, outcome="value")

    response = await first.client.put(
        "/products/BOOK-006/price", json={"price": "3.10"}, headers=as_admin
    )
    assert response.status_code == 200
    # write-through: Redis holds the new price at once, without a reload
    cached = await first.running.cache.levels.l2.get("BOOK-006")
    assert cached["price"] == "3.10"
    assert (await first.client.get("/products/BOOK-006")).json()["price"] == "3.10"

    async def second_sees_it() -> bool:
        return (await second.client.get("/products/BOOK-006")).json()["price"] == "3.10"

    await eventually(second_sees_it)  # its L1 copy was dropped through the coherence channel
    assert sample("cache_loads_total", first.settings.cache_namespace, outcome="value") == loads


async def test_views_are_written_behind_to_postgresql(catalog: Any) -> None:
    await catalog.client.get("/products/HOME-002/image")  # an image is not a view
    for _ in range(7):
        await catalog.client.get("/products/HOME-002")
    await catalog.client.get("/products/HOME-003")

    async def flushed() -> bool:
        views = "SELECT coalesce(sum(views), 0) FROM product_views WHERE sku = :sku"
        return (
            await catalog.scalar(views, sku="HOME-002") == 7
            and await catalog.scalar(views, sku="HOME-003") == 1
        )

    await eventually(flushed)
    await catalog.client.get("/products/HOME-002")
    await catalog.running.views.stop()  # stop flushes what is queued
    assert await catalog.scalar("SELECT views FROM product_views WHERE sku = 'HOME-002'") == 8
