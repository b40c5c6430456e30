"""The one-statement reserve (adapters/reserve_sql.py) on the real database: several lines
racing in both orders never drive stock negative nor deadlock; an order.created is claimed once
in the inbox, its stock.reserved or stock.rejected row goes into the outbox with it; the saga's
order events reach it through the catalog.order-events queue."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import uuid4

import pytest
from catalog_service.domain.stock import StockLine
from shop_common.messaging import Publisher, connect
from shop_common.messaging.events import OrderStatusChanged, new_event
from shop_testing.events import order_created
from shop_testing.wait import eventually

pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


async def test_multi_line_reservations_racing_in_both_orders_never_go_negative(
    catalog: Any,
) -> None:
    await catalog.execute("UPDATE stock SET available = 30 WHERE sku = 'GRDN-001'")
    await catalog.execute("UPDATE stock SET available = 1000 WHERE sku = 'GRDN-002'")
    reservations = catalog.running.reservations
    forward = [StockLine("GRDN-001", 1), StockLine("GRDN-002", 2)]
    backward = list(reversed(forward))  # the statement locks in sku order whatever the input
    outcomes = await asyncio.gather(
        *(reservations.reserve(uuid4(), forward if n % 2 else backward) for n in range(120))
    )
    assert sum(o.reserved for o in outcomes) == 30
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'GRDN-001'") == 0
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'GRDN-002'") == 940
    assert await catalog.scalar("SELECT min(available) FROM stock") >= 0
    held = "SELECT coalesce(sum(quantity), 0) FROM reservation_lines WHERE sku = 'GRDN-002'"
    assert await catalog.scalar(held) == 60


async def test_an_order_created_is_claimed_once_with_its_outbox_row(catalog: Any) -> None:
    envelope, order = order_created(("BOOK-002", 2), ("BOOK-001", 1))
    reservations = catalog.running.reservations
    answers = await asyncio.gather(
        *(reservations.reserve_for_order(envelope, order) for _ in range(5))
    )
    assert sum(a is not None for a in answers) == 1  # the other deliveries were duplicates
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-002'") == 98
    rows = await catalog.scalar(
        "SELECT json_agg(envelope) FROM outbox WHERE aggregate_id = :o", o=str(order.order_id)
    )
    [row] = json.loads(rows) if isinstance(rows, str) else rows
    assert row["event_type"] == "stock.reserved"
    assert row["causation_id"] == str(envelope.event_id)
    assert row["payload"]["items"] == [
        {"sku": "BOOK-001", "quantity": 1},
        {"sku": "BOOK-002", "quantity": 2},
    ]
    assert await catalog.scalar("SELECT count(*) FROM inbox") == 1


async def test_a_rejection_names_the_short_sku_in_its_outbox_row(catalog: Any) -> None:
    envelope, order = order_created(("BOOK-001", 1), ("TOYS-006", 1))  # TOYS-006: none left
    outcome = await catalog.running.reservations.reserve_for_order(envelope, order)
    assert outcome is not None and not outcome.reserved
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-001'") == 100
    payload = await catalog.scalar(
        "SELECT envelope -> 'payload' FROM outbox WHERE routing_key = 'stock.rejected'"
    )
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload == {
        "order_id": str(order.order_id),
        "reason": "not enough stock of TOYS-006",
        "sku": "TOYS-006",
    }


async def test_the_saga_events_reach_the_reservations_through_the_queue(catalog: Any) -> None:
    connection = await connect(catalog.settings.amqp_url, attempts=3, name="catalog-test")
    try:
        publisher = Publisher(connection)
        envelope, order = order_created(("KTCH-001", 3))
        await publisher.publish("orders", envelope)
        await publisher.publish("orders", envelope)  # redelivered: still reserved once
        available = "SELECT available FROM stock WHERE sku = 'KTCH-001'"
        await eventually(lambda: _is(catalog, available, 97), timeout=20, what="reserved")
        paid = OrderStatusChanged(order_id=order.order_id, status="PAID")
        await publisher.publish("orders", new_event("order.paid", paid))
        status = "SELECT status FROM reservations WHERE order_id = :o"
        await eventually(
            lambda: _is(catalog, status, "confirmed", o=order.order_id), timeout=20, what="conf"
        )
    finally:
        await connection.close()
    assert await catalog.scalar(available) == 97


async def _is(catalog: Any, sql: str, wanted: Any, **params: Any) -> bool:
    return bool(await catalog.scalar(sql, **params) == wanted)
