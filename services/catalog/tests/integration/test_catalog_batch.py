"""Reservations and confirmations in batches (Reservations.settle, the batch consumer's path) on
the real database: first come first served within a batch, all or nothing, once per event, and
concurrent batches over the same skus without a deadlock."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from uuid import UUID, uuid4

import pytest
from catalog_service.domain.stock import ReservationStatus
from catalog_service.service_layer.ports import ReserveRequest
from catalog_service.service_layer.reservations import Reservations
from shop_common.messaging.events import EventEnvelope, OrderCreated
from shop_testing.events import order_created
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.infra


def prepared(
    reservations: Reservations, *orders: tuple[EventEnvelope, OrderCreated]
) -> list[ReserveRequest]:
    return [reservations.prepare(envelope, order) for envelope, order in orders]


async def status_of(catalog: Any, order_id: UUID) -> str | None:
    return await catalog.scalar("SELECT status FROM reservations WHERE order_id = :o", o=order_id)


async def test_a_batch_serves_its_orders_in_turn_each_all_or_nothing(catalog: Any) -> None:
    await catalog.execute("UPDATE stock SET available = 5 WHERE sku = 'BOOK-001'")
    reservations = catalog.running.reservations
    first = order_created(("BOOK-001", 3), ("BOOK-002", 1))
    second = order_created(("BOOK-001", 3), ("BOOK-002", 1))  # 2 left: rejected, takes nothing
    third = order_created(("BOOK-001", 2))
    await reservations.settle(prepared(reservations, first, second, third), [])
    assert [await status_of(catalog, o.order_id) for _, o in (first, second, third)] == [
        "reserved",
        "rejected",
        "reserved",
    ]
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-001'") == 0
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-002'") == 99
    events = await catalog.scalar(
        "SELECT string_agg(routing_key, ',' ORDER BY id) FROM outbox"
        " WHERE routing_key LIKE 'stock.re%'"
    )
    assert events == "stock.reserved,stock.rejected,stock.reserved"
    reason = await catalog.scalar(
        "SELECT envelope->'payload'->>'reason' FROM outbox WHERE routing_key = 'stock.rejected'"
    )
    assert reason == "not enough stock of BOOK-001"


async def test_a_redelivered_batch_changes_nothing(catalog: Any) -> None:
    reservations = catalog.running.reservations
    orders = [order_created(("HOME-001", 2)) for _ in range(4)]
    await reservations.settle(prepared(reservations, *orders), [])
    await reservations.settle(prepared(reservations, *orders), [])  # the same events again
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'HOME-001'") == 92
    assert (
        await catalog.scalar("SELECT count(*) FROM outbox WHERE routing_key = 'stock.reserved'")
        == 4
    )


async def test_confirmations_come_in_one_statement_and_only_for_held_stock(catalog: Any) -> None:
    reservations = catalog.running.reservations
    held, refused = order_created(("TOYS-001", 1)), order_created(("HOME-007", 1))  # out of stock
    await reservations.settle(prepared(reservations, held, refused), [])
    confirmed = await reservations.settle([], [held[1].order_id, refused[1].order_id, uuid4()])
    assert confirmed == 1
    reservation = await reservations.get(held[1].order_id)
    assert reservation is not None
    assert (reservation.status, reservation.expires_at) == (ReservationStatus.CONFIRMED, None)
    assert await status_of(catalog, refused[1].order_id) == "rejected"
    # A new order and a confirmation in the same batch: one transaction.
    late = order_created(("TOYS-001", 1))
    await reservations.settle(prepared(reservations, late), [held[1].order_id])
    assert await status_of(catalog, late[1].order_id) == "reserved"


async def test_a_failing_batch_applies_nothing(catalog: Any) -> None:
    reservations = catalog.running.reservations
    good = order_created(("CLTH-002", 5))
    requests = prepared(reservations, good)
    twin = order_created(("CLTH-002", 5))
    # The second request's stock.reserved has the first one's event id: the outbox refuses it.
    clash = prepared(reservations, twin)[0]
    assert clash.reserved is not None and requests[0].reserved is not None
    clash = ReserveRequest(
        clash.order_id,
        clash.lines,
        clash.expires_at,
        clash.claim,
        clash.reserved.model_copy(update={"event_id": requests[0].reserved.event_id}),
        clash.rejected,
    )
    with pytest.raises(IntegrityError):
        await reservations.settle([*requests, clash], [])
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'CLTH-002'") == 100
    assert await catalog.scalar("SELECT count(*) FROM reservations") == 0
    assert await catalog.scalar("SELECT count(*) FROM inbox") == 0


async def test_concurrent_batches_over_the_same_skus_neither_deadlock_nor_oversell(
    catalog: Any,
) -> None:
    skus = ["ELEC-001", "ELEC-002", "ELEC-003"]
    await catalog.execute("UPDATE stock SET available = 30 WHERE sku = ANY(:s)", s=skus)
    reservations = catalog.running.reservations
    rng = random.Random(7)

    def batch() -> list[ReserveRequest]:
        # Each order takes two skus, listed in a random order: batches lock in opposite orders
        # unless the stock rows are locked up front in sku order.
        return prepared(
            reservations,
            *(order_created(*((s, 1) for s in rng.sample(skus, 2))) for _ in range(10)),
        )

    await asyncio.wait_for(
        asyncio.gather(*(reservations.settle(batch(), []) for _ in range(8))), timeout=60
    )
    held = await catalog.scalar("SELECT count(*) FROM reservations WHERE status = 'reserved'")
    left = await catalog.scalar("SELECT sum(available) FROM stock WHERE sku = ANY(:s)", s=skus)
    taken = await catalog.scalar(
        "SELECT sum(quantity) FROM reservation_lines WHERE sku = ANY(:s)", s=skus
    )
    assert taken == 2 * held and left == 90 - taken and left >= 0
    # 80 orders of two units for 90: none is served only once two skus are gone (60 units).
    assert held >= 30
