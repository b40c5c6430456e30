"""The public catalog through the gateway with the shipped routes and a real catalog service (its
own database, Redis namespace and vhost): anonymous reads cached once for everyone, keyed by
query and Accept, rate limited; admin writes need the admin role; a price change and a restock
published by the catalog's outbox evict the gateway's entries."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from catalog_service.entrypoints.http import create_app as create_catalog
from catalog_service.settings import Settings as CatalogSettings
from gateway.settings import DEFAULT_ROUTES_FILE
from shop_common.auth import SigningKey, TokenIssuer
from shop_common.discovery import StaticRegistry
from shop_testing.wait import eventually

from .conftest import AUDIENCE, ISSUER, Backend, RunningGateway, StartGateway, bearer, serve

SHIPPED_ROUTES: list[dict[str, Any]] = yaml.safe_load(
    DEFAULT_ROUTES_FILE.read_text(encoding="utf-8")
)["routes"]
PRODUCTS_TTL = next(r["cache_ttl_seconds"] for r in SHIPPED_ROUTES if r["name"] == "products")

pytestmark = pytest.mark.infra


@pytest_asyncio.fixture
async def catalog(
    amqp_vhost_url: str,
    database_url: str,
    redis_url: str,
    redis_namespace: str,
    signing_key: SigningKey,
) -> AsyncIterator[RunningGateway]:
    """A real catalog service served by uvicorn (migrated and seeded on start)."""
    settings = CatalogSettings(
        database_url=database_url,
        redis_url=redis_url,
        product_cache_namespace=f"{redis_namespace}products",
        amqp_url=amqp_vhost_url,
        jwt_public_keys={signing_key.kid: signing_key.public_pem},
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        outbox_poll_interval_seconds=0.1,
        database_pool_size=4,
    )
    running = await serve(create_catalog(settings), StaticRegistry())
    yield running
    await running.stop()


async def _gateway(
    start_gateway: StartGateway, catalog: RunningGateway, amqp_url: str, **overrides: Any
) -> RunningGateway:
    address = catalog.url.removeprefix("http://")
    gateway = await start_gateway(
        {"catalog-service": address},
        routes=overrides.pop("routes", SHIPPED_ROUTES),
        cache_events_enabled=True,
        amqp_url=amqp_url,
        **overrides,
    )
    async with asyncio.timeout(20):
        await gateway.app.state.cache_events.started.wait()
    return gateway


async def test_anonymous_reads_are_one_shared_entry_per_query_and_accept(
    start_gateway: StartGateway,
    catalog: RunningGateway,
    amqp_vhost_url: str,
    issuer: TokenIssuer,
) -> None:
    gateway = await _gateway(start_gateway, catalog, amqp_vhost_url)
    user = bearer(issuer.issue("7", ["user"]))
    async with gateway.client() as client:
        first = await client.get("/api/products", params={"category": "books", "page_size": 3})
        # A token does not make a listing personal: the same entry, and a bad one is not read.
        with_token = await client.get(
            "/api/products", params={"page_size": 3, "category": "books"}, headers=user
        )
        bad_token = await client.get(
            "/api/products?category=books&page_size=3", headers=bearer("not-a-jwt")
        )
        other_query = await client.get("/api/products", params={"category": "toys"})
        other_accept = await client.get(
            "/api/products",
            params={"category": "books", "page_size": 3},
            headers={"Accept": "application/problem+json"},
        )
        product = [await client.get("/api/products/BOOK-001") for _ in range(2)]
        stock = [await client.get("/api/products/BOOK-001/stock") for _ in range(2)]
        image = [await client.get("/api/products/BOOK-001/image") for _ in range(2)]
    assert first.status_code == 200, first.text
    assert [i["sku"] for i in first.json()["items"]] == ["BOOK-001", "BOOK-002", "BOOK-003"]
    assert first.json()["items"][0]["image_url"] == "/api/products/BOOK-001/image"
    cache = [r.headers["x-cache"] for r in (first, with_token, bad_token, other_query)]
    assert cache == ["MISS", "HIT", "HIT", "MISS"]
    assert with_token.content == first.content
    assert other_accept.headers["x-cache"] == "MISS"
    assert [r.headers["x-cache"] for r in product] == ["MISS", "HIT"]
    assert product[1].json()["sku"] == "BOOK-001"
    # Stock is `no-store`, images are SVG (only JSON is stored): both go to the catalog each time.
    assert [r.headers["x-cache"] for r in stock] == ["MISS", "MISS"]
    assert [r.headers["x-cache"] for r in image] == ["MISS", "MISS"]
    assert image[0].headers["content-type"] == "image/svg+xml"
    await gateway.stop()  # before the vhost goes


async def test_a_price_change_through_the_gateway_evicts_the_product_and_the_pages(
    start_gateway: StartGateway,
    catalog: RunningGateway,
    amqp_vhost_url: str,
    issuer: TokenIssuer,
) -> None:
    gateway = await _gateway(start_gateway, catalog, amqp_vhost_url)
    admin, user = bearer(issuer.issue("1", ["admin"])), bearer(issuer.issue("7", ["user"]))
    price = {"price": "12.34"}
    async with gateway.client() as client:
        for path in ("/api/products/BOOK-002", "/api/products?category=books"):
            await client.get(path)
            assert (await client.get(path)).headers["x-cache"] == "HIT"
        await client.get("/api/products/TOYS-001")
        anonymous = await client.put("/api/products/BOOK-002/price", json=price)
        not_admin = await client.put("/api/products/BOOK-002/price", json=price, headers=user)
        changed = await client.put("/api/products/BOOK-002/price", json=price, headers=admin)
        assert (anonymous.status_code, not_admin.status_code) == (401, 403)
        assert changed.status_code == 200, changed.text
        assert changed.json()["image_url"] == "/api/products/BOOK-002/image"

        async def repriced(path: str, pick: Any) -> bool:
            answer = await client.get(path)
            return answer.headers["x-cache"] == "MISS" and pick(answer.json()) == "12.34"

        # Within half the entries' TTL: a MISS any later could be expiry, not the event.
        await eventually(
            lambda: repriced("/api/products/BOOK-002", lambda p: p["price"]),
            timeout=PRODUCTS_TTL / 2,
            interval=0.05,
            what="the product's entry evicted by product.price_changed",
        )
        page = await client.get("/api/products?category=books")
        untouched = await client.get("/api/products/TOYS-001")
    assert next(i for i in page.json()["items"] if i["sku"] == "BOOK-002")["price"] == "12.34"
    assert untouched.headers["x-cache"] == "HIT"
    await gateway.stop()


async def test_a_restock_through_the_gateway_evicts_the_product_only(
    start_gateway: StartGateway,
    catalog: RunningGateway,
    amqp_vhost_url: str,
    issuer: TokenIssuer,
) -> None:
    gateway = await _gateway(start_gateway, catalog, amqp_vhost_url)
    admin = bearer(issuer.issue("1", ["admin"]))
    async with gateway.client() as client:
        for path in ("/api/products/HOME-007", "/api/products?category=home"):
            await client.get(path)
        restocked = await client.post(
            "/api/products/HOME-007/restock", json={"quantity": 4}, headers=admin
        )
        assert restocked.json() == {"sku": "HOME-007", "available": 4}

        async def evicted() -> bool:
            return (await client.get("/api/products/HOME-007")).headers["x-cache"] == "MISS"

        await eventually(evicted, timeout=PRODUCTS_TTL / 2, interval=0.05, what="evicted")
        page = await client.get("/api/products?category=home")
        stock = await client.get("/api/products/HOME-007/stock")
    assert page.headers["x-cache"] == "HIT"  # no cached page shows stock
    assert stock.json()["available"] == 4
    await gateway.stop()


async def test_anonymous_reads_are_rate_limited_per_client_cache_hits_too(
    start_gateway: StartGateway, catalog: RunningGateway, amqp_vhost_url: str
) -> None:
    routes = copy.deepcopy(SHIPPED_ROUTES)
    products = next(r for r in routes if r["name"] == "products")
    products["rate_limit"] = {"limit": 3, "window_seconds": 60, "fail": "open"}
    gateway = await _gateway(start_gateway, catalog, amqp_vhost_url, routes=routes)
    async with gateway.client() as client:
        answers = [await client.get("/api/products/BOOK-003") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[2].headers["x-cache"] == "HIT"
    assert answers[3].headers["content-type"] == "application/problem+json"
    await gateway.stop()


async def test_an_anonymous_route_sends_no_credentials_upstream(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    routes = copy.deepcopy(SHIPPED_ROUTES)
    gateway = await start_gateway({"catalog-service": backend.address}, routes=routes)
    token = bearer(issuer.issue("7", ["admin"]))
    async with gateway.client() as client:
        seen = await client.get(
            "/api/products/X-1", headers={**token, "Cookie": "session=s", "X-User-ID": "1"}
        )
    headers = seen.json()["headers"]
    assert seen.json()["path"] == "/products/X-1"
    assert not {"authorization", "cookie", "x-user-id", "x-user-roles"} & set(headers)
    assert headers["x-forwarded-prefix"] == "/api"


async def test_the_catalog_answers_through_the_gateway_as_problem_json(
    start_gateway: StartGateway, catalog: RunningGateway, amqp_vhost_url: str
) -> None:
    gateway = await _gateway(start_gateway, catalog, amqp_vhost_url)
    async with gateway.client() as client:
        answers = {
            path: await client.get(path)
            for path in (
                "/api/products/NOPE-404",
                "/api/products/book-001",
                "/api/products?page_size=100000",
                "/api/products?page_token=forged",
            )
        }
        delete = await client.delete("/api/products/BOOK-001")
    assert {p: r.status_code for p, r in answers.items()} == {
        "/api/products/NOPE-404": 404,
        "/api/products/book-001": 422,
        "/api/products?page_size=100000": 422,
        "/api/products?page_token=forged": 400,
    }
    assert all(r.headers["content-type"] == "application/problem+json" for r in answers.values())
    assert (delete.status_code, delete.headers["allow"]) == (405, "GET, HEAD")
    await gateway.stop()
