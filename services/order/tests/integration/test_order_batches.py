"""Saga results in batches (OrderService.moves, the batch consumer's path) against real
PostgreSQL: a run of payments moves its orders to PAID in one transaction, once per event; what
it cannot move (a duplicate, an order that stopped waiting) is left untouched for the one-at-a-time
path; concurrent batches over the same orders neither deadlock nor move an order twice."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from uuid import uuid4

import pytest
from order_service.domain.order import Order, OrderLine, OrderStatus
from order_service.service_layer.orders import OrderService
from order_service.service_layer.unit_of_work import Move
from shop_common.messaging.events import EventEnvelope, PaymentSucceeded, new_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.infra

LINES = [OrderLine("SKU-1", 2, Decimal("10.25"))]


def charged(order: Order) -> EventEnvelope:
    payload = PaymentSucceeded(
        payment_id=uuid4(), order_id=order.id, amount=order.total, currency="EUR"
    )
    return new_event("payment.succeeded", payload, correlation_id=str(order.id))


async def scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


async def test_a_run_of_payments_moves_its_orders_once(
    service: OrderService, engine: AsyncEngine
) -> None:
    orders = [(await service.create(7, LINES, "EUR"))[0] for _ in range(5)]
    events = [charged(o) for o in orders]
    moves = [
        service.moves.prepare(e, o.id, OrderStatus.PAID)
        for e, o in zip(events, orders, strict=True)
    ]
    assert await service.moves.apply(moves) == [True] * 5
    assert await service.moves.apply(moves) == [False] * 5  # redelivered: nothing happens
    for order in orders:
        paid = await service.get(order.id, user_id=7, is_admin=False)
        assert (paid.status, paid.version) == (OrderStatus.PAID, order.version + 1)
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'order.paid'") == 5
    assert await scalar(engine, "SELECT count(*) FROM inbox") == 5
    # order.paid continues each payment's saga: caused by it, correlated by the order.
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT aggregate_id, envelope->>'causation_id' AS cause FROM outbox"
                " WHERE routing_key = 'order.paid'"
            )
        )
        causes = {r.aggregate_id: r.cause for r in rows}
    assert causes == {str(o.id): str(e.event_id) for o, e in zip(orders, events, strict=True)}


async def test_what_a_batch_cannot_move_is_left_untouched(
    service: OrderService, engine: AsyncEngine
) -> None:
    waiting, _ = await service.create(7, LINES, "EUR")
    cancelled, _ = await service.create(7, LINES, "EUR")
    await service.cancel(cancelled.id, user_id=7, is_admin=False)  # charged late: owed a refund
    payment, late_charge = charged(waiting), charged(cancelled)
    moves = [
        service.moves.prepare(payment, waiting.id, OrderStatus.PAID),
        service.moves.prepare(charged(waiting), waiting.id, OrderStatus.PAID),  # a second charge
        service.moves.prepare(late_charge, cancelled.id, OrderStatus.PAID),
        service.moves.prepare(charged(waiting), uuid4(), OrderStatus.PAID),  # no such order
    ]
    assert await service.moves.apply(moves) == [True, False, False, False]
    assert await scalar(engine, "SELECT count(*) FROM inbox") == 1  # the left ones claimed nothing
    # The one-at-a-time path then answers the late charge with a refund request.
    assert await service.apply_payment_result(late_charge, cancelled.id, OrderStatus.PAID)
    refund = "SELECT count(*) FROM outbox WHERE routing_key = 'order.cancelled'"
    assert await scalar(engine, refund) == 2  # the cancellation's, then the refund request
    still = await service.get(cancelled.id, user_id=7, is_admin=False)
    assert still.status is OrderStatus.CANCELLED


async def test_concurrent_batches_over_shared_orders_move_each_once(
    service: OrderService, engine: AsyncEngine
) -> None:
    orders = [(await service.create(7, LINES, "EUR"))[0] for _ in range(30)]
    events = {o.id: charged(o) for o in orders}
    rng = random.Random(11)

    def batch() -> list[Move]:
        picked = rng.sample(orders, 15)  # overlapping runs, in different orders
        return [service.moves.prepare(events[o.id], o.id, OrderStatus.PAID) for o in picked]

    async def settle(moves: list[Move]) -> list[bool]:
        try:
            return await service.moves.apply(moves)
        except Exception:  # a run that lost an inbox race rolls back whole (the consumer then
            return [False] * len(moves)  # takes its messages one at a time)

    results = await asyncio.wait_for(asyncio.gather(*(settle(batch()) for _ in range(8))), 60)
    moved = sum(sum(r) for r in results)
    paid = await scalar(engine, "SELECT count(*) FROM orders WHERE status = 'PAID'")
    assert moved == paid
    assert (
        await scalar(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'order.paid'") == paid
    )
    assert await scalar(
        engine, "SELECT max(c) FROM (SELECT count(*) c FROM inbox GROUP BY event_id) x"
    ) in (None, 1)
    # Whatever a lost race left behind, the one-at-a-time path finishes: every order PAID once.
    for order in orders:
        await service.apply_payment_result(events[order.id], order.id, OrderStatus.PAID)
    assert await scalar(engine, "SELECT count(*) FROM orders WHERE status = 'PAID'") == 30
    assert (
        await scalar(engine, "SELECT count(*) FROM outbox WHERE routing_key = 'order.paid'") == 30
    )
