"""The public reads through the real app: seed data, search, keyset pages, images, bad input."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.infra


async def test_the_seed_catalog_has_50_products_with_stock(catalog: Any) -> None:
    assert await catalog.scalar("SELECT count(*) FROM products") == 50
    assert await catalog.scalar("SELECT count(*) FROM stock") == 50
    response = await catalog.client.get("/products/BOOK-001")
    assert response.status_code == 200
    body = response.json()
    assert body["sku"] == "BOOK-001"
    assert body["currency"] == "EUR"
    assert body["image_url"] == "/products/BOOK-001/image"
    assert response.headers["cache-control"].startswith("public")
    stock = await catalog.client.get("/products/BOOK-001/stock")
    assert stock.json() == {"sku": "BOOK-001", "available": 100}


async def test_keyset_pages_cover_the_catalog_once_in_sku_order(catalog: Any) -> None:
    seen: list[str] = []
    token = None
    while True:
        params = {"page_size": 7, **({"page_token": token} if token else {})}
        page = (await catalog.client.get("/products", params=params)).json()
        seen += [p["sku"] for p in page["items"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert len(seen) == 50
    assert seen == sorted(seen)


async def test_search_by_text_and_category(catalog: Any) -> None:
    page = (await catalog.client.get("/products", params={"category": "kitchen"})).json()
    assert {p["category"] for p in page["items"]} == {"kitchen"}
    assert len(page["items"]) == 6
    found = (await catalog.client.get("/products", params={"q": "SKILLET"})).json()
    assert [p["sku"] for p in found["items"]] == ["KTCH-002"]
    # LIKE wildcards in q are text, not patterns
    nothing = (await catalog.client.get("/products", params={"q": "%_"})).json()
    assert nothing["items"] == []
    api = await catalog.client.get("/api/products", params={"q": "kite"})
    assert [p["sku"] for p in api.json()["items"]] == ["TOYS-003"]


async def test_a_page_token_is_bound_to_its_filters(catalog: Any) -> None:
    first = (await catalog.client.get("/products", params={"page_size": 2, "q": "a"})).json()
    token = first["next_page_token"]
    assert token
    other = await catalog.client.get(
        "/products", params={"page_size": 2, "q": "b", "page_token": token}
    )
    assert other.status_code == 400
    assert other.headers["content-type"] == "application/problem+json"


async def test_the_image_is_an_escaped_svg(catalog: Any) -> None:
    response = await catalog.client.get("/products/KTCH-001/image")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<svg")
    assert "Chef&#x27;s Knife" in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/products/NOPE-999", 404),
        ("/products/NOPE-999/image", 404),
        ("/products/NOPE-999/stock", 404),
        ("/products/book-001", 422),
        ("/products/" + "A" * 40, 422),
        ("/products/BOOK-001%27%3B--", 422),
        ("/products?page_size=100000", 422),
        ("/products?page_size=0", 422),
        ("/products?category=weapons", 422),
        ("/products?q=" + "x" * 101, 422),
        ("/products?page_token=not-a-token", 400),
        ("/products?page_token=" + "A" * 5000, 400),
        ("/products?page_token=%00%ff", 400),
    ],
)
async def test_bad_input_is_a_4xx_problem(catalog: Any, path: str, status: int) -> None:
    response = await catalog.client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_health_ready_and_metrics(catalog: Any) -> None:
    assert (await catalog.client.get("/health")).status_code == 200
    ready = await catalog.client.get("/ready")
    assert ready.status_code == 200, ready.text
    metrics = await catalog.client.get("/metrics")
    assert (
        'shop_requests_total{code="200",operation="GET /ready",outcome="ok",protocol="http"}'
        in metrics.text
    )


@pytest.mark.parametrize("q", ["\x00", "a\x00b", "\\", "'; DROP TABLE products; --", "é" * 100])
async def test_hostile_search_text_is_a_4xx_or_an_empty_page(catalog: Any, q: str) -> None:
    response = await catalog.client.get("/products", params={"q": q})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["items"] == []
    assert await catalog.scalar("SELECT count(*) FROM products") == 50
