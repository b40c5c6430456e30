"""Payment use cases against real PostgreSQL: one charge per order, decline, refund, competition."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import uuid4

import pytest
from payment_service.adapters.provider.simulated import SimulatedProvider
from payment_service.adapters.unit_of_work import SqlUnitOfWorkFactory
from payment_service.service_layer.payments import PaymentService
from payment_service.service_layer.provider import ProviderFaults, ProviderUnavailableError
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCancelled,
    StockLine,
    StockReserved,
    new_event,
)
from shop_common.migrations import migrate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

pytestmark = pytest.mark.infra


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    await migrate("payment_service", database_url)
    # Two engines stand for two payment instances sharing the payments database.
    pair = [create_async_engine(database_url), create_async_engine(database_url)]
    yield pair
    for eng in pair:
        await eng.dispose()


@pytest.fixture
def provider() -> SimulatedProvider:
    return SimulatedProvider(
        ProviderFaults(latency_ms=1, decline_above=Decimal("500.00")), rng=random.Random(3)
    )


def services(engines: list[AsyncEngine], provider: SimulatedProvider) -> list[PaymentService]:
    return [PaymentService(SqlUnitOfWorkFactory(e), provider) for e in engines]


def stock_reserved(total: str) -> tuple[EventEnvelope, StockReserved]:
    event = StockReserved(
        order_id=uuid4(),
        user_id=7,
        items=[StockLine(sku="A", quantity=1)],
        total=Decimal(total),
        currency="EUR",
    )
    return new_event("stock.reserved", event, correlation_id=str(event.order_id)), event


async def outbox(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [
            r.routing_key
            for r in await conn.execute(text("SELECT routing_key FROM outbox ORDER BY id"))
        ]


async def test_triple_delivery_on_two_instances_charges_once(
    engines: list[AsyncEngine], provider: SimulatedProvider
) -> None:
    envelope, event = stock_reserved("12.30")
    a, b = services(engines, provider)
    results = await asyncio.gather(
        a.handle_stock_reserved(envelope, event),
        b.handle_stock_reserved(envelope, event),
        a.handle_stock_reserved(envelope, event),
    )
    assert sorted(results) == [False, False, True]
    assert provider.charge_count == 1
    rows = await a.for_order(event.order_id)
    assert [(r.kind, r.status, r.amount) for r in rows] == [
        ("charge", "succeeded", Decimal("12.30"))
    ]
    assert await outbox(engines[0]) == ["payment.succeeded"]


async def test_distinct_events_for_one_order_still_one_charge(
    engines: list[AsyncEngine], provider: SimulatedProvider
) -> None:
    envelope, event = stock_reserved("1.00")
    replay = new_event("stock.reserved", event)  # a different event id for the same order
    a, b = services(engines, provider)
    await asyncio.gather(
        a.handle_stock_reserved(envelope, event), b.handle_stock_reserved(replay, event)
    )
    assert len(await a.for_order(event.order_id)) == 1
    assert await outbox(engines[0]) == ["payment.succeeded"]


async def test_decline_records_failure_without_charge(
    engines: list[AsyncEngine], provider: SimulatedProvider
) -> None:
    envelope, event = stock_reserved("900.00")
    (svc, _) = services(engines, provider)
    assert await svc.handle_stock_reserved(envelope, event)
    [row] = await svc.for_order(event.order_id)
    assert row.status == "declined"
    assert "card limit" in (row.reason or "")
    assert provider.charge_count == 0
    assert await outbox(engines[0]) == ["payment.failed"]


async def test_provider_down_raises_and_leaves_no_trace(
    engines: list[AsyncEngine], provider: SimulatedProvider
) -> None:
    envelope, event = stock_reserved("3.00")
    (svc, _) = services(engines, provider)
    provider.set_faults(down=True)
    with pytest.raises(ProviderUnavailableError):
        await svc.handle_stock_reserved(envelope, event)
    assert await svc.for_order(event.order_id) == []
    provider.set_faults(down=False)
    assert await svc.handle_stock_reserved(envelope, event)  # the retried delivery succeeds


async def test_cancel_of_paid_order_refunds_once(
    engines: list[AsyncEngine], provider: SimulatedProvider
) -> None:
    envelope, event = stock_reserved("4.00")
    (svc, other) = services(engines, provider)
    await svc.handle_stock_reserved(envelope, event)
    cancel = new_event(
        "order.cancelled", OrderCancelled(order_id=event.order_id, user_id=7, refund_required=True)
    )
    results = await asyncio.gather(
        svc.handle_order_cancelled(cancel, cancel_payload(cancel)),
        other.handle_order_cancelled(cancel, cancel_payload(cancel)),
    )
    assert sorted(results) == [False, True]
    kinds = [r.kind for r in await svc.for_order(event.order_id)]
    assert kinds == ["charge", "refund"]
    assert await outbox(engines[0]) == ["payment.succeeded", "payment.refunded"]


def cancel_payload(envelope: EventEnvelope) -> OrderCancelled:
    return OrderCancelled.model_validate(envelope.payload)
