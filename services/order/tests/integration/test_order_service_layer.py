"""Order use cases against real PostgreSQL: outbox rows, idempotency, inbox, transitions, saga."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from order_service.domain.order import IllegalTransitionError, OrderLine, OrderStatus
from order_service.service_layer.orders import (
    IdempotencyConflictError,
    OrderNotFoundError,
    OrderService,
)
from shop_common.messaging.events import PaymentFailed, PaymentSucceeded, new_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.infra

LINES = [OrderLine("SKU-1", 2, Decimal("10.25")), OrderLine("SKU-2", 1, Decimal("0.10"))]


async def outbox_types(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT routing_key FROM outbox ORDER BY id"))
        return [r.routing_key for r in rows]


async def test_create_computes_total_and_writes_outbox(
    service: OrderService, engine: AsyncEngine
) -> None:
    order, created = await service.create(7, LINES, "EUR")
    assert created
    assert order.total == Decimal("20.60")
    assert order.status is OrderStatus.PENDING
    assert await outbox_types(engine) == ["order.created"]
    async with engine.connect() as conn:
        payload = (await conn.execute(text("SELECT envelope->'payload' AS p FROM outbox"))).one().p
    assert payload["total"] == "20.60"


async def test_idempotency_key_same_body_same_order(
    service: OrderService, engine: AsyncEngine
) -> None:
    first, _ = await service.create(7, LINES, "EUR", idempotency_key="k1")
    again, created = await service.create(7, LINES, "EUR", idempotency_key="k1")
    assert again.id == first.id
    assert not created
    assert await outbox_types(engine) == ["order.created"]
    with pytest.raises(IdempotencyConflictError):
        await service.create(7, LINES[:1], "EUR", idempotency_key="k1")


async def test_another_users_order_is_not_found(service: OrderService) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    with pytest.raises(OrderNotFoundError):
        await service.get(order.id, user_id=8, is_admin=False)
    with pytest.raises(OrderNotFoundError):
        await service.cancel(order.id, user_id=8, is_admin=False)
    assert (await service.get(order.id, user_id=8, is_admin=True)).id == order.id


async def test_payment_result_applied_once_then_cancel_refund(
    service: OrderService, engine: AsyncEngine
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    event = new_event(
        "payment.succeeded",
        PaymentSucceeded(payment_id=uuid4(), order_id=order.id, amount=order.total, currency="EUR"),
    )
    assert await service.apply_payment_result(event, order.id, OrderStatus.PAID)
    assert not await service.apply_payment_result(event, order.id, OrderStatus.PAID)
    cancelled = await service.cancel(order.id, user_id=7, is_admin=False)
    assert cancelled.status is OrderStatus.CANCELLED_REFUND_PENDING
    with pytest.raises(IllegalTransitionError):
        await service.cancel(order.id, user_id=7, is_admin=False)
    assert await outbox_types(engine) == ["order.created", "order.paid", "order.cancelled"]


async def test_saga_timeout_fails_and_compensates(
    service: OrderService, engine: AsyncEngine
) -> None:
    order, _ = await service.create(7, LINES, "EUR")
    assert await service.expire_pending(timedelta(hours=1)) == 0
    assert await service.expire_pending(timedelta(0)) == 1
    failed = await service.get(order.id, user_id=7, is_admin=False)
    assert failed.status is OrderStatus.PAYMENT_FAILED
    assert failed.failure_reason == "payment timed out"
    assert await outbox_types(engine) == [
        "order.created",
        "order.payment_failed",
        "order.cancelled",
    ]


async def test_concurrent_deliveries_of_one_payment_result_move_the_order_once(
    service: OrderService, engine: AsyncEngine
) -> None:
    """The one-statement path under a race: ten copies at once, one effect, one event."""
    order, _ = await service.create(7, LINES, "EUR")
    event = new_event(
        "payment.succeeded",
        PaymentSucceeded(payment_id=uuid4(), order_id=order.id, amount=order.total, currency="EUR"),
    )
    results = await asyncio.gather(
        *(service.apply_payment_result(event, order.id, OrderStatus.PAID) for _ in range(10))
    )
    assert results.count(True) == 1
    paid = await service.get(order.id, user_id=7, is_admin=False)
    assert paid.status is OrderStatus.PAID
    assert paid.version == order.version + 1
    assert await outbox_types(engine) == ["order.created", "order.paid"]
    async with engine.connect() as conn:
        claims = await conn.execute(
            text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": event.event_id}
        )
        assert claims.scalar_one() == 1


async def test_a_failed_payment_keeps_its_reason_and_a_late_charge_is_compensated(
    service: OrderService, engine: AsyncEngine
) -> None:
    declined, _ = await service.create(7, LINES, "EUR")
    failure = new_event(
        "payment.failed", PaymentFailed(order_id=declined.id, reason="card declined")
    )
    assert await service.apply_payment_result(
        failure, declined.id, OrderStatus.PAYMENT_FAILED, "card declined"
    )
    failed = await service.get(declined.id, user_id=7, is_admin=False)
    assert (failed.status, failed.failure_reason) == (OrderStatus.PAYMENT_FAILED, "card declined")
    # An order cancelled while PENDING, then charged anyway: the charge must be given back.
    cancelled, _ = await service.create(7, LINES, "EUR")
    await service.cancel(cancelled.id, user_id=7, is_admin=False)
    late = new_event(
        "payment.succeeded",
        PaymentSucceeded(
            payment_id=uuid4(), order_id=cancelled.id, amount=cancelled.total, currency="EUR"
        ),
    )
    assert await service.apply_payment_result(late, cancelled.id, OrderStatus.PAID)
    assert not await service.apply_payment_result(late, cancelled.id, OrderStatus.PAID)
    still = await service.get(cancelled.id, user_id=7, is_admin=False)
    assert still.status is OrderStatus.CANCELLED
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT routing_key, envelope->'payload'->>'refund_required' AS refund"
                    " FROM outbox WHERE aggregate_id = :a ORDER BY id"
                ),
                {"a": str(cancelled.id)},
            )
        ).all()
    assert [(r.routing_key, r.refund) for r in rows] == [
        ("order.created", None),
        ("order.cancelled", "false"),
        ("order.cancelled", "true"),
    ]
