"""Issue 15, inventory in the saga, through real processes (catalog, order, payment, user):
order created → stock reserved (one statement, once) → charged → PAID and the reservation
confirmed; out of stock → REJECTED with no charge; payment failed → the stock comes back;
cancel after PAID → refund and restock; a reservation that times out is released and its order
never becomes PAID; 1,000 orders racing for 100 units: exactly 100 PAID, 900 REJECTED.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from shop_devstack.pipeline import Pipeline
from shop_testing.wait import eventually

from .conftest import MakePipeline, Shop, payments_of, shop_for

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]


@pytest.fixture
def pipeline(shared_pipeline: Pipeline) -> Pipeline:
    """This module's tests share the module's pipeline; each works on skus of its own."""
    return shared_pipeline


async def catalog_row(pipeline: Pipeline, sql: str, *args: Any) -> Any:
    """One value from the catalog's database."""
    conn = await asyncpg.connect(pipeline.database_url("catalog"))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def stock_of(pipeline: Pipeline, sku: str) -> int:
    return int(await catalog_row(pipeline, "SELECT available FROM stock WHERE sku = $1", sku))


async def reservation_of(pipeline: Pipeline, order_id: str) -> str | None:
    status = await catalog_row(
        pipeline, "SELECT status FROM reservations WHERE order_id = $1::uuid", order_id
    )
    return None if status is None else str(status)


async def wait_reservation(pipeline: Pipeline, order_id: str, wanted: str) -> None:
    async def there() -> bool:
        return await reservation_of(pipeline, order_id) == wanted

    await eventually(there, timeout=30, interval=0.1, what=f"reservation {wanted}")


async def test_a_paid_order_holds_its_stock_for_good(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    before = await stock_of(pipeline, "GRDN-003")
    order = await shop.place_ok([{"sku": "GRDN-003", "quantity": 4}])
    await shop.wait_status([order["id"]], "PAID")
    await wait_reservation(pipeline, order["id"], "confirmed")
    assert await stock_of(pipeline, "GRDN-003") == before - 4
    rows = await payments_of(pipeline, [order["id"]])
    assert [(r["kind"], r["status"]) for r in rows] == [("charge", "succeeded")]


async def test_out_of_stock_rejects_the_order_and_charges_nothing(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    before = await stock_of(pipeline, "GRDN-004")
    # TOYS-006 is out of stock in the seed: GRDN-004 must not be taken either.
    order = await shop.place_ok(
        [{"sku": "GRDN-004", "quantity": 1}, {"sku": "TOYS-006", "quantity": 1}]
    )
    await shop.wait_status([order["id"]], "REJECTED")
    body = (await shop.get(order["id"])).json()
    assert "TOYS-006" in body["failure_reason"]
    assert await reservation_of(pipeline, order["id"]) == "rejected"
    assert await stock_of(pipeline, "GRDN-004") == before
    assert await payments_of(pipeline, [order["id"]]) == []


async def test_a_failed_payment_gives_the_stock_back(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    before = await stock_of(pipeline, "BOOK-005")
    # 60 × 189.99 = 11,399.40 EUR: above the simulated card limit, so declined.
    order = await shop.place_ok([{"sku": "BOOK-005", "quantity": 60}])
    await shop.wait_status([order["id"]], "PAYMENT_FAILED")
    await wait_reservation(pipeline, order["id"], "released")
    assert await stock_of(pipeline, "BOOK-005") == before
    rows = await payments_of(pipeline, [order["id"]])
    assert [(r["kind"], r["status"]) for r in rows] == [("charge", "declined")]


async def test_cancel_after_paid_refunds_and_restocks(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    before = await stock_of(pipeline, "CLTH-002")
    order = await shop.place_ok([{"sku": "CLTH-002", "quantity": 3}])
    await shop.wait_status([order["id"]], "PAID")
    await wait_reservation(pipeline, order["id"], "confirmed")
    cancelled = await shop.cancel(order["id"])
    assert cancelled.status_code in (200, 202), cancelled.text
    await shop.wait_status([order["id"]], "REFUNDED")
    await wait_reservation(pipeline, order["id"], "released")
    assert await stock_of(pipeline, "CLTH-002") == before
    rows = await payments_of(pipeline, [order["id"]])
    assert sorted((r["kind"], r["status"]) for r in rows) == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]


async def test_1000_orders_racing_for_100_units_pay_exactly_100(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    await pipeline.set_stock("HOME-001", 100)
    shop = await shop_for(pipeline, http)
    slots = asyncio.Semaphore(32)

    async def one() -> str:
        async with slots:
            placed = await shop.place_ok([{"sku": "HOME-001", "quantity": 1}])
            return str(placed["id"])

    order_ids = await asyncio.gather(*(one() for _ in range(1000)))

    async def all_ended() -> bool:
        return not (await _states(shop, order_ids)).keys() - {"PAID", "REJECTED"}

    await eventually(all_ended, timeout=240, interval=1.0, what="every order PAID or REJECTED")
    assert await _states(shop, order_ids) == {"PAID": 100, "REJECTED": 900}
    assert await stock_of(pipeline, "HOME-001") == 0
    held = await catalog_row(
        pipeline,
        "SELECT sum(l.quantity) FROM reservation_lines l JOIN reservations r USING (order_id)"
        " WHERE l.sku = 'HOME-001' AND r.status = 'confirmed'",
    )
    assert held == 100
    charges = [r for r in await payments_of(pipeline, order_ids) if r["kind"] == "charge"]
    assert len(charges) == 100 and len({r["order_id"] for r in charges}) == 100  # once each
    assert {r["status"] for r in charges} == {"succeeded"}


async def _states(shop: Shop, order_ids: list[str]) -> Counter[str]:
    conn = await asyncpg.connect(shop.pipeline.database_url("orders"))
    try:
        rows = await conn.fetch("SELECT status FROM orders WHERE id = ANY($1::uuid[])", order_ids)
    finally:
        await conn.close()
    return Counter(str(row["status"]) for row in rows)


async def test_an_expired_reservation_is_released_and_its_order_never_becomes_paid(
    make_pipeline: MakePipeline, http: httpx.AsyncClient
) -> None:
    # The charge takes 3 s; the reservation expires after 1 s, so the sweeper releases it first.
    pipeline = await make_pipeline(
        catalog_env={
            "RESERVATION_TTL_SECONDS": "1",
            "RESERVATION_SWEEP_INTERVAL_SECONDS": "0.2",
        },
        payment_env={"PROVIDER_LATENCY_MS": "3000"},
    )
    shop = await shop_for(pipeline, http)
    before = await stock_of(pipeline, "OUTD-001")
    order = await shop.place_ok([{"sku": "OUTD-001", "quantity": 2}])
    await shop.wait_status([order["id"]], "REJECTED")
    assert await reservation_of(pipeline, order["id"]) == "released"
    assert await stock_of(pipeline, "OUTD-001") == before
    assert "expired" in (await shop.get(order["id"])).json()["failure_reason"]

    async def charge_given_back() -> bool:
        rows = await payments_of(pipeline, [order["id"]])
        return sorted((r["kind"], r["status"]) for r in rows) == [
            ("charge", "succeeded"),
            ("refund", "succeeded"),
        ]

    # The charge that landed late was refunded, and the order stayed REJECTED.
    await eventually(charge_given_back, timeout=30, interval=0.2, what="late charge refunded")
    assert await shop.status(order["id"]) == "REJECTED"
    assert await stock_of(pipeline, "OUTD-001") == before
