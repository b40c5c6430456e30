"""Stock reservations on the real database: all or nothing, never negative under concurrency,
released exactly once, expired ones released by the sweep, idempotent per order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from catalog_service.adapters.unit_of_work import SqlUnitOfWorkFactory
from catalog_service.domain.stock import ReservationStatus, StockLine
from catalog_service.service_layer.reservations import Reservations
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra


async def test_200_concurrent_reservations_race_for_50_units(catalog: Any) -> None:
    await catalog.execute("UPDATE stock SET available = 50 WHERE sku = 'ELEC-001'")
    reservations = catalog.running.reservations
    order_ids = [uuid4() for _ in range(200)]
    outcomes = await asyncio.gather(
        *(reservations.reserve(o, [StockLine("ELEC-001", 1)]) for o in order_ids)
    )
    assert sum(o.reserved for o in outcomes) == 50
    assert sum(not o.reserved for o in outcomes) == 150
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'ELEC-001'") == 0
    held = "SELECT coalesce(sum(quantity), 0) FROM reservation_lines WHERE sku = 'ELEC-001'"
    assert await catalog.scalar(held) == 50
    assert await catalog.scalar("SELECT count(*) FROM reservations") == 200


async def test_a_reservation_takes_all_lines_or_none(catalog: Any) -> None:
    reservations = catalog.running.reservations
    order_id = uuid4()
    # HOME-007 is out of stock: BOOK-001 must not be taken either
    outcome = await reservations.reserve(
        order_id, [StockLine("BOOK-001", 3), StockLine("HOME-007", 1)]
    )
    assert not outcome.reserved
    assert outcome.reservation.reason == "not enough stock of HOME-007"
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-001'") == 100
    again = await reservations.reserve(order_id, [StockLine("BOOK-001", 1)])
    assert not again.created
    assert again.reservation.status is ReservationStatus.REJECTED


async def test_an_unknown_sku_rejects_the_reservation(catalog: Any) -> None:
    outcome = await catalog.running.reservations.reserve(uuid4(), [StockLine("NOPE-1", 1)])
    assert not outcome.reserved


async def test_reserve_twice_for_one_order_takes_once(catalog: Any) -> None:
    reservations = catalog.running.reservations
    order_id = uuid4()
    lines = [StockLine("BOOK-003", 2), StockLine("BOOK-003", 1), StockLine("BOOK-004", 1)]
    results = await asyncio.gather(*(reservations.reserve(order_id, lines) for _ in range(10)))
    assert sum(r.created for r in results) == 1
    assert all(r.reserved for r in results)
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-003'") == 97
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'BOOK-004'") == 99


async def test_a_release_happens_exactly_once(catalog: Any) -> None:
    reservations = catalog.running.reservations
    order_id = uuid4()
    assert (await reservations.reserve(order_id, [StockLine("CLTH-001", 4)])).reserved
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'CLTH-001'") == 96
    released = await asyncio.gather(*(reservations.release(order_id) for _ in range(20)))
    assert released.count(True) == 1
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'CLTH-001'") == 100
    assert not await reservations.release(uuid4())  # nothing to release: no error, no effect


async def test_a_confirmed_reservation_does_not_expire_but_can_be_released(catalog: Any) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    expired_already = Reservations(SqlUnitOfWorkFactory(catalog.engine), 1, clock=lambda: past)
    paid, abandoned = uuid4(), uuid4()
    assert (await expired_already.reserve(paid, [StockLine("GRDN-001", 5)])).reserved
    assert (await expired_already.reserve(abandoned, [StockLine("GRDN-001", 7)])).reserved
    reservations = catalog.running.reservations
    assert await reservations.confirm(paid)
    assert await reservations.release_expired() == 1
    assert (await reservations.get(abandoned)).status is ReservationStatus.RELEASED
    assert (await reservations.get(paid)).status is ReservationStatus.CONFIRMED
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'GRDN-001'") == 95
    # cancelled after PAID: the confirmed reservation is released, once
    assert await reservations.release(paid)
    assert not await reservations.release(paid)
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'GRDN-001'") == 100


async def test_the_sweeper_releases_expired_reservations(start_app: Any) -> None:
    catalog = await start_app(reservation_ttl_seconds=0.2, reservation_sweep_interval_seconds=0.1)
    order_id = uuid4()
    assert (
        await catalog.running.reservations.reserve(order_id, [StockLine("KTCH-003", 9)])
    ).reserved

    async def released() -> bool:
        reservation = await catalog.running.reservations.get(order_id)
        return reservation is not None and reservation.status is ReservationStatus.RELEASED

    await eventually(released)
    assert await catalog.scalar("SELECT available FROM stock WHERE sku = 'KTCH-003'") == 100
