"""POST /orders takes its body as written (issue 11): no bool, numeric string or float becomes a
quantity, and a line never carries a price (the shop prices it: a `unit_price` of any shape is an
unknown field). Each is the exact 422 validation problem, and nothing is written (orders, lines,
idempotency keys, outbox)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import ITEMS, RunningApp, Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]

TABLES = ("orders", "order_lines", "outbox")


def body(quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"items": [{"sku": "BOOK-001", "quantity": quantity, **extra}], "currency": "EUR"}


PRICE_LOC = ["body", "items", "0", "unit_price"]
# (body, the one error's loc, its type)
STRICT_CASES: list[tuple[dict[str, Any], list[str], str]] = [
    (body(quantity=True), ["body", "items", "0", "quantity"], "int_type"),
    (body(quantity=False), ["body", "items", "0", "quantity"], "int_type"),
    (body(quantity="2"), ["body", "items", "0", "quantity"], "int_type"),
    (body(quantity=2.0), ["body", "items", "0", "quantity"], "int_type"),
    # A client-sent price, whatever its shape (even the shop's own), is refused.
    *[
        (body(unit_price=price), PRICE_LOC, "extra_forbidden")
        for price in ("41.99", "0.01", 10.25, 0, True, "1" * 5000)
    ],
    ({**body(), "currency": 978}, ["body", "currency"], "string_type"),
    (
        {"items": [{**ITEMS[0], "sku": 1}], "currency": "EUR"},
        ["body", "items", "0", "sku"],
        "string_type",
    ),
]


async def counts(running: RunningApp) -> dict[str, int]:
    engine = create_async_engine(running.runtime.settings.database_url)
    try:
        async with engine.connect() as conn:
            return {
                table: int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in TABLES
            }
    finally:
        await engine.dispose()


async def test_coercible_values_are_the_exact_422_and_create_nothing(
    running: RunningApp, shopper: Shopper
) -> None:
    """One app for every case (set-up is the slow part); each case gets its own key."""
    _, token = await shopper()
    before = await counts(running)
    for index, (payload, loc, error_type) in enumerate(STRICT_CASES):
        key = {"Idempotency-Key": f"strict-{index}"}
        response = await running.http.post("/orders", json=payload, headers=bearer(token, **key))
        assert response.status_code == 422, (payload, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert {k: problem[k] for k in ("type", "title", "status", "detail", "instance")} == {
            "type": "about:blank",
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "The request is not valid.",
            "instance": "/orders",
        }, payload
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, error_type)], payload
        assert "input" not in problem["errors"][0]  # the offending value is never echoed
    assert await counts(running) == before
    # A refused key stored nothing: with a valid body it creates the order, not a replay.
    created = await running.http.post(
        "/orders", json=body(), headers=bearer(token, **{"Idempotency-Key": "strict-0"})
    )
    assert created.status_code == 201, created.text
    assert "Idempotent-Replayed" not in created.headers
    after = await counts(running)
    assert (after["orders"], after["order_lines"]) == (
        before["orders"] + 1,
        before["order_lines"] + 1,
    )


async def test_an_integer_quantity_is_priced_exactly_by_the_shop(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    response = await running.http.post("/orders", json=body(quantity=3), headers=bearer(token))
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["items"][0]["quantity"] == 3 and order["items"][0]["unit_price"] == "41.99"
    assert order["total"] == "125.97"
