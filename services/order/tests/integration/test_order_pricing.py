"""The shop prices every line (issue 15): from the real catalog, behind the price cache, evicted
on product.price_changed; an unknown sku is a 422 naming it; a catalog that is down with nothing
cached is a fast 503 with Retry-After."""

from __future__ import annotations

import socket

import httpx
import pytest
from shop_common.auth import TokenIssuer
from shop_testing.wait import eventually

from .conftest import BOOK_001_PRICE, ITEMS, CatalogService, RunningApp, Shopper, StartApp, bearer

pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


async def test_a_line_is_priced_at_the_catalogs_price_and_the_order_keeps_it(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    response = await running.http.post("/orders", json={"items": ITEMS}, headers=bearer(token))
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["items"] == [{"sku": "BOOK-001", "quantity": 2, "unit_price": BOOK_001_PRICE}]
    assert order["currency"] == "EUR" and order["total"] == "83.98"


async def test_an_unknown_sku_is_a_422_naming_it_and_nothing_is_written(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    body = {"items": [*ITEMS, {"sku": "NOPE-404", "quantity": 1}], "currency": "EUR"}
    response = await running.http.post("/orders", json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("unknown-sku") and problem["sku"] == "NOPE-404"
    assert "NOPE-404" in problem["detail"]
    listed = await running.http.get("/orders", headers=bearer(token))
    assert listed.json()["items"] == []


async def test_a_price_change_reaches_the_next_order(
    running: RunningApp,
    shopper: Shopper,
    catalog_service: CatalogService,
    issuer: TokenIssuer,
) -> None:
    _, token = await shopper()
    body = {"items": [{"sku": "BOOK-001", "quantity": 1}]}
    first = await running.http.post("/orders", json=body, headers=bearer(token))
    assert first.json()["total"] == BOOK_001_PRICE  # now cached
    async with httpx.AsyncClient(base_url=catalog_service.url) as catalog:
        changed = await catalog.put(
            "/products/BOOK-001/price",
            json={"price": "45.50"},
            headers=bearer(issuer.issue("1", ["admin"])),
        )
        assert changed.status_code == 200, changed.text

    async def next_order_pays_the_new_price() -> bool:
        response = await running.http.post("/orders", json=body, headers=bearer(token))
        assert response.status_code == 201, response.text
        return bool(response.json()["items"][0]["unit_price"] == "45.50")

    # Well inside the cache's TTL (300 s): only the eviction can make this true.
    await eventually(next_order_pays_the_new_price, timeout=15, interval=0.2, what="new price")
    kept = await running.http.get(f"/orders/{first.json()['id']}", headers=bearer(token))
    assert kept.json()["total"] == BOOK_001_PRICE  # an order keeps the price it was priced at


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_catalog_that_is_down_with_nothing_cached_is_a_503_with_retry_after(
    start_app: StartApp, shopper: Shopper
) -> None:
    app = await start_app(
        catalog_service_addresses=f"127.0.0.1:{_closed_port()}",
        catalog_breaker_failures=2,
        catalog_breaker_recovery_seconds=30,
    )
    _, token = await shopper()
    for _ in range(3):  # the last one finds the breaker open: refused without a call
        response = await app.http.post("/orders", json={"items": ITEMS}, headers=bearer(token))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["type"].endswith("catalog-unavailable")
        assert "127.0.0.1" not in response.text  # no internal address leaks
