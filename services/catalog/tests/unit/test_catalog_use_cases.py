"""The catalog's use cases on in-memory fakes: reads, admin changes with their events, and
reservations (all or nothing, idempotent per order, released once, expiry)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from catalog_service.domain.errors import (
    InvalidPriceError,
    InvalidQuantityError,
    StockLimitError,
    UnknownSkuError,
)
from catalog_service.domain.listing import ProductFilter
from catalog_service.domain.product import Category
from catalog_service.domain.stock import MAX_STOCK, ReservationStatus, StockLine


async def test_a_product_read_goes_through_the_cache_and_counts_a_view(world: Any) -> None:
    for _ in range(3):
        assert (await world.reads.product("TST-001")).name == "Thing 1"
    assert world.cache.loads == 1
    assert world.views.seen_skus == ["TST-001"] * 3


@pytest.mark.parametrize("sku", ["TST-999", "not a sku", "", "tst-001"])
async def test_an_unknown_or_malformed_sku_is_unknown(world: Any, sku: str) -> None:
    with pytest.raises(UnknownSkuError):
        await world.reads.product(sku)
    assert world.views.seen_skus == []


async def test_pages_continue_after_the_last_sku(world: Any) -> None:
    books = ProductFilter(category=Category.BOOKS)
    first, last = await world.reads.page(books, None, 1)
    assert [p.sku for p in first] == ["TST-001"]
    rest, end = await world.reads.page(books, last, 1)
    assert [p.sku for p in rest] == ["TST-003"]
    assert end is None


async def test_a_price_change_emits_its_event_and_writes_through(world: Any) -> None:
    product = await world.admin.change_price("TST-002", Decimal("12.5"), actor="1")
    assert product.price == Decimal("12.50")
    [event] = world.store.outbox
    assert event.event_type == "product.price_changed"
    assert event.payload["old_price"] == "9.99"
    assert event.payload["new_price"] == "12.50"
    assert world.cache.entries["TST-002"] == product


@pytest.mark.parametrize("price", ["0", "-1", "0.001", "1000000.01", "NaN", "Infinity"])
async def test_an_invalid_price_changes_nothing(world: Any, price: str) -> None:
    with pytest.raises(InvalidPriceError):
        await world.admin.change_price("TST-001", Decimal(price), actor="1")
    assert world.store.outbox == []
    assert world.cache.entries == {}


async def test_a_price_change_of_an_unknown_sku_changes_nothing(world: Any) -> None:
    with pytest.raises(UnknownSkuError):
        await world.admin.change_price("TST-404", Decimal("1.00"), actor="1")
    assert world.store.outbox == [] and world.store.commits == 0


async def test_a_restock_emits_stock_changed(world: Any) -> None:
    assert await world.admin.restock("TST-001", 5, actor="1") == 15
    [event] = world.store.outbox
    assert event.payload == {"sku": "TST-001", "available": 15, "delta": 5, "reason": "restock"}


async def test_restock_limits(world: Any) -> None:
    with pytest.raises(InvalidQuantityError):
        await world.admin.restock("TST-001", 0, actor="1")
    world.store.stock["TST-001"] = MAX_STOCK
    with pytest.raises(StockLimitError):
        await world.admin.restock("TST-001", 1, actor="1")
    assert world.store.outbox == []


async def test_reserve_is_all_or_nothing(world: Any) -> None:
    order_id = uuid4()
    outcome = await world.reservations.reserve(
        order_id, [StockLine("TST-001", 4), StockLine("TST-002", 11)]
    )
    assert not outcome.reserved
    assert outcome.reservation.reason == "not enough stock of TST-002"
    assert world.store.stock == {"TST-001": 10, "TST-002": 10, "TST-003": 10}
    assert world.store.reservations[order_id].status is ReservationStatus.REJECTED


async def test_reserve_sums_duplicate_lines_and_answers_a_repeat_the_same(world: Any) -> None:
    order_id = uuid4()
    lines = [StockLine("TST-003", 2), StockLine("TST-001", 1), StockLine("TST-003", 3)]
    first = await world.reservations.reserve(order_id, lines)
    assert first.created and first.reserved
    assert first.reservation.lines == (StockLine("TST-001", 1), StockLine("TST-003", 5))
    again = await world.reservations.reserve(order_id, lines)
    assert not again.created and again.reserved
    assert world.store.stock["TST-003"] == 5


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [StockLine("TST-001", 0)],
        [StockLine("TST-001", -1)],
        [StockLine("bad", 1)],
        [StockLine("TST-001", 6000), StockLine("TST-001", 6000)],
    ],
)
async def test_invalid_reservation_lines_are_refused(world: Any, lines: list[StockLine]) -> None:
    with pytest.raises((InvalidQuantityError, UnknownSkuError)):
        await world.reservations.reserve(uuid4(), lines)
    assert world.store.reservations == {}


async def test_release_gives_stock_back_once(world: Any) -> None:
    order_id = uuid4()
    await world.reservations.reserve(order_id, [StockLine("TST-001", 4)])
    assert world.store.stock["TST-001"] == 6
    assert await world.reservations.release(order_id)
    assert not await world.reservations.release(order_id)
    assert world.store.stock["TST-001"] == 10


async def test_expired_reservations_are_released_but_confirmed_ones_are_kept(world: Any) -> None:
    kept, dropped = uuid4(), uuid4()
    await world.reservations.reserve(kept, [StockLine("TST-001", 1)])
    await world.reservations.reserve(dropped, [StockLine("TST-001", 2)])
    assert await world.reservations.confirm(kept)
    assert await world.reservations.release_expired() == 0  # not expired yet
    world.clock[0] += timedelta(seconds=61)
    assert await world.reservations.release_expired() == 1
    assert world.store.reservations[kept].status is ReservationStatus.CONFIRMED
    assert world.store.reservations[dropped].status is ReservationStatus.RELEASED
    assert world.store.stock["TST-001"] == 9


async def test_a_read_that_is_not_a_view_is_not_counted(world: Any) -> None:
    await world.reads.product("TST-001", count_view=False)
    assert world.views.seen_skus == []
