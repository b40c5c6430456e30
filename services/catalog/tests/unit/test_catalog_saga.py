"""The catalog's side of the order saga against the in-memory fakes: order.created reserves
once and tells the saga (stock.reserved with what to charge, or stock.rejected naming the short
sku); a release answers its cause once and publishes stock.released; the sweeper's releases say
`expired`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from catalog_service.domain.stock import ReservationStatus
from shop_common.messaging.events import OrderStatusChanged, new_event
from shop_testing.events import order_created


async def test_order_created_reserves_once_and_publishes_what_to_charge(world: Any) -> None:
    envelope, order = order_created(("TST-001", 2), ("TST-002", 1), unit_price=Decimal("9.99"))
    outcome = await world.reservations.reserve_for_order(envelope, order)
    assert outcome is not None and outcome.reserved
    assert await world.reservations.reserve_for_order(envelope, order) is None  # redelivery
    assert world.store.stock["TST-001"] == 8 and world.store.stock["TST-002"] == 9
    [event] = world.store.outbox
    assert event.event_type == "stock.reserved"
    assert event.causation_id == str(envelope.event_id)
    assert event.correlation_id == str(order.order_id)
    assert event.payload["total"] == "29.97" and event.payload["user_id"] == 7
    assert event.payload["items"] == [
        {"sku": "TST-001", "quantity": 2},
        {"sku": "TST-002", "quantity": 1},
    ]


async def test_out_of_stock_rejects_naming_the_sku_and_takes_nothing(world: Any) -> None:
    envelope, order = order_created(("TST-001", 2), ("TST-003", 11))
    outcome = await world.reservations.reserve_for_order(envelope, order)
    assert outcome is not None and not outcome.reserved
    assert world.store.stock == {"TST-001": 10, "TST-002": 10, "TST-003": 10}
    [event] = world.store.outbox
    assert event.event_type == "stock.rejected"
    assert event.payload["sku"] == "TST-003"
    assert event.payload["reason"] == "not enough stock of TST-003"


async def test_a_release_answers_its_cause_once_and_publishes_stock_released(world: Any) -> None:
    created, order = order_created(("TST-001", 4))
    await world.reservations.reserve_for_order(created, order)
    failed = new_event(
        "order.payment_failed", OrderStatusChanged(order_id=order.order_id, status="FAILED")
    )
    assert await world.reservations.release(order.order_id, reason="payment_failed", cause=failed)
    assert not await world.reservations.release(
        order.order_id, reason="payment_failed", cause=failed
    )
    assert world.store.stock["TST-001"] == 10
    released = world.store.outbox[-1]
    assert released.event_type == "stock.released"
    assert released.payload["reason"] == "payment_failed"
    assert released.payload["items"] == [{"sku": "TST-001", "quantity": 4}]
    assert [e.event_type for e in world.store.outbox].count("stock.released") == 1


async def test_a_paid_order_keeps_its_stock_until_cancelled(world: Any) -> None:
    created, order = order_created(("TST-002", 3))
    await world.reservations.reserve_for_order(created, order)
    assert await world.reservations.confirm(order.order_id)
    world.clock[0] += timedelta(hours=1)
    assert await world.reservations.release_expired() == 0  # confirmed: never expires
    assert world.store.stock["TST-002"] == 7
    assert await world.reservations.release(order.order_id, reason="cancelled")
    assert world.store.stock["TST-002"] == 10


async def test_the_sweeper_releases_an_unpaid_reservation_as_expired(world: Any) -> None:
    created, order = order_created(("TST-001", 5))
    await world.reservations.reserve_for_order(created, order)
    world.clock[0] += timedelta(seconds=61)
    assert await world.reservations.release_expired() == 1
    assert world.store.reservations[order.order_id].status is ReservationStatus.RELEASED
    assert world.store.outbox[-1].payload["reason"] == "expired"
    assert not await world.reservations.confirm(order.order_id)  # too late to keep
