"""Every order use case against the in-memory fakes (tests/unit/fakes.py): happy paths, domain
errors, idempotency rules and state-machine refusals. No infrastructure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from order_service.domain.listing import OrderFilter
from order_service.domain.order import (
    ConcurrentUpdateError,
    IllegalTransitionError,
    InvalidOrderError,
    OrderLine,
    OrderStatus,
    WantedLine,
)
from order_service.entrypoints.sweeper import SagaTimeoutSweeper
from order_service.service_layer.orders import (
    INBOX_CONSUMER,
    IdempotencyConflictError,
    OrderNotFoundError,
    OrderService,
    PlaceOrder,
)
from order_service.service_layer.prices import CatalogUnavailableError, Price, UnknownSkuError
from order_service.service_layer.users import UnknownUserError, UserServiceUnavailableError
from shop_common.messaging.events import (
    EventEnvelope,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    new_event,
)

from .fakes import FakePrices, FakeStore, FakeUoWFactory, FakeUsers

LINES = [OrderLine("SKU-1", 2, Decimal("10.25")), OrderLine("SKU-2", 1, Decimal("0.10"))]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uows() -> FakeUoWFactory:
    return FakeUoWFactory()


@pytest.fixture
def store(uows: FakeUoWFactory) -> FakeStore:
    return uows.store


@pytest.fixture
def service(uows: FakeUoWFactory, clock: Clock) -> OrderService:
    return OrderService(uows, clock=clock)


def paid(order_id: UUID) -> EventEnvelope:
    payload = PaymentSucceeded(
        payment_id=uuid4(), order_id=order_id, amount=Decimal("20.60"), currency="EUR"
    )
    return new_event("payment.succeeded", payload)


# ----- create ---------------------------------------------------------------------------------
async def test_create_computes_the_total_and_emits_order_created(
    service: OrderService, store: FakeStore, uows: FakeUoWFactory
) -> None:
    order, created = await service.create(7, LINES, "EUR")
    assert created
    assert (order.total, order.status, order.created_at) == (
        Decimal("20.60"),
        OrderStatus.PENDING,
        T0,
    )
    assert store.orders[order.id] == order
    assert store.event_types == ["order.created"]
    event = store.events[0]
    assert event.correlation_id == str(order.id)
    assert event.payload["total"] == "20.60"
    assert uows.last.committed


async def test_create_with_the_same_key_and_body_replays_the_first_order(
    service: OrderService, store: FakeStore
) -> None:
    first, _ = await service.create(7, LINES, "EUR", idempotency_key="k1")
    again, created = await service.create(7, LINES, "EUR", idempotency_key="k1")
    assert (again.id, created) == (first.id, False)
    assert store.event_types == ["order.created"]
    other_user, created = await service.create(8, LINES, "EUR", idempotency_key="k1")
    assert created and other_user.id != first.id  # keys are per user


async def test_create_with_the_same_key_and_another_body_is_a_conflict(
    service: OrderService, store: FakeStore
) -> None:
    await service.create(7, LINES, "EUR", idempotency_key="k1")
    with pytest.raises(IdempotencyConflictError):
        await service.create(7, LINES[:1], "EUR", idempotency_key="k1")
    assert len(store.orders) == 1


async def test_create_refuses_invalid_orders_before_writing(
    service: OrderService, store: FakeStore, uows: FakeUoWFactory
) -> None:
    for lines, currency in (
        ([], "EUR"),
        (LINES, "XXX"),
        ([OrderLine("SKU", 0, Decimal("1"))], "EUR"),
        ([OrderLine("SKU", 1, Decimal("1.5"))], "JPY"),
    ):
        with pytest.raises(InvalidOrderError):
            await service.create(7, lines, currency)
    assert store.orders == {} and uows.made == []


async def test_a_key_whose_order_cannot_be_read_back_is_a_concurrent_update(
    service: OrderService, store: FakeStore
) -> None:
    store.keys[(7, "k1")] = (uuid4(), "another request")  # taken, its order not visible
    with pytest.raises(ConcurrentUpdateError):
        await service.create(7, LINES, "EUR", idempotency_key="k1")


# ----- place (user check + create) ------------------------------------------------------------
def _price_list() -> FakePrices:
    return FakePrices(
        {
            "SKU-1": Price("SKU-1", Decimal("10.25"), "EUR"),
            "SKU-2": Price("SKU-2", Decimal("0.10"), "EUR"),
        }
    )


WANTED = [WantedLine("SKU-1", 2), WantedLine("SKU-2", 1)]


async def test_place_checks_the_caller_with_its_token_then_creates(
    service: OrderService, store: FakeStore
) -> None:
    users = FakeUsers(known={7})
    place = PlaceOrder(users, _price_list(), service)
    order, created = await place(7, WANTED, "EUR", token="t", request_id="r")
    assert created and order.user_id == 7
    assert users.asked == [(7, "t", "r")]
    with pytest.raises(UnknownUserError):
        await place(8, WANTED, "EUR", token="t8")
    users.failure = UserServiceUnavailableError("down", 2)
    with pytest.raises(UserServiceUnavailableError):
        await place(7, WANTED, "EUR", token="t")
    assert len(store.orders) == 1  # nothing written for a refused caller


async def test_place_prices_every_line_at_the_shops_current_price(
    service: OrderService, store: FakeStore
) -> None:
    prices = _price_list()
    place = PlaceOrder(FakeUsers(known={7}), prices, service)
    order, _ = await place(7, WANTED, None, token="t")
    assert list(order.lines) == LINES and order.total == Decimal("20.60")
    assert order.currency == "EUR"  # absent: the shop's
    prices.prices["SKU-1"] = Price("SKU-1", Decimal("11.00"), "EUR")  # the price changed
    later, _ = await place(7, WANTED, "EUR", token="t")
    assert later.lines[0].unit_price == Decimal("11.00") and later.total == Decimal("22.10")
    assert store.orders[order.id].lines[0].unit_price == Decimal("10.25")  # kept as priced


async def test_place_refuses_an_unknown_sku_a_foreign_currency_and_a_catalog_outage(
    service: OrderService, store: FakeStore
) -> None:
    prices = _price_list()
    place = PlaceOrder(FakeUsers(known={7}), prices, service)
    with pytest.raises(UnknownSkuError) as unknown:
        await place(7, [*WANTED, WantedLine("NOPE-1", 1)], "EUR", token="t")
    assert unknown.value.sku == "NOPE-1"
    with pytest.raises(InvalidOrderError):
        await place(7, WANTED, "USD", token="t")
    prices.failure = CatalogUnavailableError("down", 3)
    with pytest.raises(CatalogUnavailableError):
        await place(7, WANTED, "EUR", token="t")
    assert store.orders == {}  # nothing written


async def test_a_replay_after_a_price_change_returns_the_order_priced_the_first_time(
    service: OrderService,
) -> None:
    prices = _price_list()
    place = PlaceOrder(FakeUsers(known={7}), prices, service)
    first, _ = await place(7, WANTED, "EUR", "key-1", token="t")
    prices.prices["SKU-1"] = Price("SKU-1", Decimal("99.00"), "EUR")
    again, created = await place(7, WANTED, "EUR", "key-1", token="t")
    assert not created and again == first


# ----- get / list -----------------------------------------------------------------------------
async def test_get_shows_an_order_to_its_owner_and_admins_only(service: OrderService) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    assert (await service.get(order.id, user_id=7, is_admin=False)) == order
    assert (await service.get(order.id, user_id=8, is_admin=True)) == order
    for order_id, user in ((order.id, 8), (uuid4(), 7)):
        with pytest.raises(OrderNotFoundError):
            await service.get(order_id, user_id=user, is_admin=False)


async def test_list_pages_newest_first_with_a_cursor(service: OrderService, clock: Clock) -> None:
    made = []
    for i in range(5):
        clock.now = T0 + timedelta(minutes=i)
        made.append((await service.create(7, LINES, "EUR"))[0])
    await service.create(8, LINES, "EUR")
    mine = OrderFilter(user_id=7)
    first, cursor = await service.list_page(mine, None, 2)
    assert [o.id for o in first] == [made[4].id, made[3].id]
    assert cursor is not None and cursor.order_id == made[3].id
    second, cursor = await service.list_page(mine, cursor, 2)
    third, end = await service.list_page(mine, cursor, 2)
    assert [o.id for o in second + third] == [made[2].id, made[1].id, made[0].id]
    assert end is None
    everyone, _ = await service.list_page(OrderFilter(user_id=None), None, 10)
    assert len(everyone) == 6


# ----- cancel ---------------------------------------------------------------------------------
async def test_cancel_a_pending_order_needs_no_refund(
    service: OrderService, store: FakeStore
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    cancelled = await service.cancel(order.id, user_id=7, is_admin=False)
    assert cancelled.status is OrderStatus.CANCELLED
    assert store.orders[order.id].version == order.version + 1
    assert store.event_types == ["order.created", "order.cancelled"]
    assert store.events[-1].payload["refund_required"] is False


async def test_cancel_a_paid_order_asks_for_a_refund_and_a_second_cancel_is_refused(
    service: OrderService, store: FakeStore, uows: FakeUoWFactory
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    assert await service.apply_payment_result(paid(order.id), order.id, OrderStatus.PAID)
    cancelled = await service.cancel(order.id, user_id=8, is_admin=True)
    assert cancelled.status is OrderStatus.CANCELLED_REFUND_PENDING
    assert store.events[-1].payload["refund_required"] is True
    with pytest.raises(IllegalTransitionError):
        await service.cancel(order.id, user_id=7, is_admin=False)
    assert not uows.last.committed and uows.last.rolled_back
    assert store.event_types == ["order.created", "order.paid", "order.cancelled"]


async def test_cancel_of_another_users_order_is_not_found(
    service: OrderService, store: FakeStore
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    with pytest.raises(OrderNotFoundError):
        await service.cancel(order.id, user_id=8, is_admin=False)
    assert store.orders[order.id].status is OrderStatus.PENDING


# ----- payment results ------------------------------------------------------------------------
async def test_a_payment_result_moves_the_order_once(
    service: OrderService, store: FakeStore
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    event = paid(order.id)
    assert await service.apply_payment_result(event, order.id, OrderStatus.PAID)
    assert not await service.apply_payment_result(event, order.id, OrderStatus.PAID)
    assert store.orders[order.id].status is OrderStatus.PAID
    assert store.event_types == ["order.created", "order.paid"]
    assert store.events[-1].causation_id == str(event.event_id)
    assert (event.event_id, INBOX_CONSUMER) in store.inbox


async def test_a_failed_payment_keeps_its_reason(service: OrderService, store: FakeStore) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    failure = new_event("payment.failed", PaymentFailed(order_id=order.id, reason="declined"))
    assert await service.apply_payment_result(
        failure, order.id, OrderStatus.PAYMENT_FAILED, "declined"
    )
    failed = store.orders[order.id]
    assert (failed.status, failed.failure_reason) == (OrderStatus.PAYMENT_FAILED, "declined")
    assert store.event_types[-1] == "order.payment_failed"


async def test_a_late_charge_on_a_cancelled_order_is_refunded_once(
    service: OrderService, store: FakeStore
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    await service.cancel(order.id, user_id=7, is_admin=False)
    late = paid(order.id)
    assert await service.apply_payment_result(late, order.id, OrderStatus.PAID)
    assert not await service.apply_payment_result(late, order.id, OrderStatus.PAID)
    assert store.orders[order.id].status is OrderStatus.CANCELLED
    assert store.event_types == ["order.created", "order.cancelled", "order.cancelled"]
    assert store.events[-1].payload["refund_required"] is True
    assert store.events[-1].causation_id == str(late.event_id)


async def test_a_result_the_state_machine_refuses_is_claimed_and_changes_nothing(
    service: OrderService, store: FakeStore, uows: FakeUoWFactory
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    assert await service.apply_payment_result(paid(order.id), order.id, OrderStatus.PAID)
    refused = new_event("payment.failed", PaymentFailed(order_id=order.id, reason="late"))
    assert not await service.apply_payment_result(refused, order.id, OrderStatus.PAYMENT_FAILED)
    assert uows.last.committed  # the claim is kept: a redelivery is a duplicate
    assert (refused.event_id, INBOX_CONSUMER) in store.inbox
    assert store.orders[order.id].status is OrderStatus.PAID
    assert store.event_types == ["order.created", "order.paid"]


async def test_a_refund_completes_a_cancelled_paid_order(
    service: OrderService, store: FakeStore
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    await service.apply_payment_result(paid(order.id), order.id, OrderStatus.PAID)
    await service.cancel(order.id, user_id=7, is_admin=False)
    refund = new_event(
        "payment.refunded",
        PaymentRefunded(
            payment_id=uuid4(), order_id=order.id, amount=Decimal("20.60"), currency="EUR"
        ),
    )
    assert await service.apply_payment_result(refund, order.id, OrderStatus.REFUNDED)
    assert store.orders[order.id].status is OrderStatus.REFUNDED
    assert store.event_types[-1] == "order.refunded"


async def test_a_result_for_an_unknown_order_is_ignored(
    service: OrderService, store: FakeStore
) -> None:
    missing = uuid4()
    assert not await service.apply_payment_result(paid(missing), missing, OrderStatus.PAID)
    assert store.events == []


# ----- saga timeout ---------------------------------------------------------------------------
async def test_the_saga_timeout_fails_and_compensates_old_pending_orders_only(
    service: OrderService, store: FakeStore, clock: Clock
) -> None:
    old, _ = await service.create(7, LINES, "EUR")
    clock.now = T0 + timedelta(minutes=10)
    young, _ = await service.create(7, LINES, "EUR")
    assert await service.expire_pending(timedelta(minutes=5)) == 1
    failed = store.orders[old.id]
    assert (failed.status, failed.failure_reason) == (
        OrderStatus.PAYMENT_FAILED,
        "payment timed out",
    )
    assert store.orders[young.id].status is OrderStatus.PENDING
    assert store.event_types[-2:] == ["order.payment_failed", "order.cancelled"]
    assert store.events[-1].payload["refund_required"] is True
    assert await service.expire_pending(timedelta(minutes=5)) == 0


async def test_the_sweeper_expires_batch_after_batch(
    uows: FakeUoWFactory, store: FakeStore, clock: Clock
) -> None:
    service = OrderService(uows, clock=clock)
    for _ in range(5):
        await service.create(7, LINES, "EUR")
    clock.now = T0 + timedelta(hours=1)

    class Batched(OrderService):
        async def expire_pending(self, older_than: timedelta, *, limit: int = 2) -> int:
            return await super().expire_pending(older_than, limit=limit)

    sweeper = SagaTimeoutSweeper(Batched(uows, clock=clock), timeout=60, interval=1)
    assert await sweeper.sweep() == 5
    assert {o.status for o in store.orders.values()} == {OrderStatus.PAYMENT_FAILED}
