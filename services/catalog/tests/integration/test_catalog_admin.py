"""Admin changes through the real app: auth, the change and its event in one transaction, the
outbox relay publishing product.price_changed and stock.changed to the catalog exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage
from shop_common.messaging import EventEnvelope, connect
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra


@pytest_asyncio.fixture
async def catalog_events(catalog: Any, amqp_vhost_url: str) -> AsyncIterator[list[EventEnvelope]]:
    """Every event published on the catalog exchange (the app declared it at start)."""
    connection = await connect(amqp_vhost_url)
    channel = await connection.channel()
    exchange = await channel.get_exchange("catalog")
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "#")
    seen: list[EventEnvelope] = []

    async def collect(message: AbstractIncomingMessage) -> None:
        seen.append(EventEnvelope.from_json(message.body))
        await message.ack()

    await queue.consume(collect)
    yield seen
    await channel.close()
    await connection.close()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/products/BOOK-001/price", {"price": "12.50"}),
        ("POST", "/products/BOOK-001/restock", {"quantity": 5}),
        ("PUT", "/api/products/BOOK-001/price", {"price": "12.50"}),
    ],
)
async def test_admin_routes_need_an_admin_token(
    catalog: Any, as_user: dict[str, str], method: str, path: str, body: dict[str, Any]
) -> None:
    anonymous = await catalog.client.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" in anonymous.headers
    forged = await catalog.client.request(
        method, path, json=body, headers={"Authorization": "Bearer not.a.jwt"}
    )
    assert forged.status_code == 401
    user = await catalog.client.request(method, path, json=body, headers=as_user)
    assert user.status_code == 403
    assert await catalog.scalar("SELECT count(*) FROM outbox") == 0


async def test_a_price_change_publishes_product_price_changed(
    catalog: Any, as_admin: dict[str, str], catalog_events: list[EventEnvelope]
) -> None:
    old = (await catalog.client.get("/products/GRDN-002")).json()["price"]
    response = await catalog.client.put(
        "/products/GRDN-002/price", json={"price": "7.25"}, headers=as_admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["price"] == "7.25"

    await eventually(lambda: any(e.event_type == "product.price_changed" for e in catalog_events))
    event = next(e for e in catalog_events if e.event_type == "product.price_changed")
    assert event.payload == {
        "sku": "GRDN-002",
        "old_price": old,
        "new_price": "7.25",
        "currency": "EUR",
    }


async def test_a_restock_publishes_stock_changed(
    catalog: Any, as_admin: dict[str, str], catalog_events: list[EventEnvelope]
) -> None:
    response = await catalog.client.post(
        "/products/TOYS-006/restock", json={"quantity": 12}, headers=as_admin
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"sku": "TOYS-006", "available": 12}

    await eventually(lambda: any(e.event_type == "stock.changed" for e in catalog_events))
    event = next(e for e in catalog_events if e.event_type == "stock.changed")
    assert event.payload == {"sku": "TOYS-006", "available": 12, "delta": 12, "reason": "restock"}


async def test_concurrent_restocks_all_count(catalog: Any, as_admin: dict[str, str]) -> None:
    async def restock() -> int:
        response = await catalog.client.post(
            "/products/HOME-001/restock", json={"quantity": 3}, headers=as_admin
        )
        return response.status_code

    assert set(await asyncio.gather(*(restock() for _ in range(20)))) == {200}
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'HOME-001'") == 160
    assert await catalog.scalar("SELECT count(*) FROM outbox") == 20


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/products/NOPE-1/price", {"price": "1.00"}, 404),
        ("PUT", "/products/BOOK-001/price", {"price": "0"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "-1"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "1.001"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "NaN"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "Infinity"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "1e999999"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "99999999.00"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "1", "currency": "USD"}, 422),
        ("PUT", "/products/BOOK-001/price", [], 422),
        # Coercible values are refused, not coerced: money is a decimal string, a count an integer.
        ("PUT", "/products/BOOK-001/price", {"price": 12.5}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": True}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "1e2"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": " 12.50"}, 422),
        ("PUT", "/products/BOOK-001/price", {"price": "012.50"}, 422),
        ("POST", "/products/BOOK-001/restock", {"quantity": True}, 422),
        ("POST", "/products/BOOK-001/restock", {"quantity": "3"}, 422),
        ("POST", "/products/BOOK-001/restock", {"quantity": 3.0}, 422),
        ("POST", "/products/BOOK-001/restock", {"quantity": 0}, 422),
        ("POST", "/products/BOOK-001/restock", {"quantity": 10**12}, 422),
        ("POST", "/products/BOOK-001/restock", {"quantity": "many"}, 422),
        ("POST", "/products/bad sku/restock", {"quantity": 1}, 422),
    ],
)
async def test_bad_admin_input_is_a_4xx_problem(
    catalog: Any,
    as_admin: dict[str, str],
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    response = await catalog.client.request(method, path, json=body, headers=as_admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await catalog.scalar("SELECT count(*) FROM outbox") == 0


async def test_a_restock_past_the_stock_limit_is_a_409(
    catalog: Any, as_admin: dict[str, str]
) -> None:
    await catalog.execute("UPDATE stock SET available = 999999999 WHERE sku = 'BOOK-002'")
    response = await catalog.client.post(
        "/products/BOOK-002/restock", json={"quantity": 10}, headers=as_admin
    )
    assert response.status_code == 409
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-002'") == 999999999
