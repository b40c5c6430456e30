"""Through the running app and a real broker: charge, decline, outage with retries, refund, dedup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from shop_common.messaging import StockLine, StockReserved, new_event
from shop_common.messaging.consumer import MESSAGES_CONSUMED
from sqlalchemy import text

pytestmark = pytest.mark.infra

Poll = Callable[..., Awaitable[None]]


async def test_order_created_is_charged_and_payment_succeeded_is_published(
    payment_app: Any, broker: Any, as_user: Callable[[int], dict[str, str]]
) -> None:
    order = await broker.stock_reserved("20.50", user_id=7)

    event = await broker.result(order.order_id, "payment.succeeded")

    assert event.payload["amount"] == "20.50"
    assert event.correlation_id == str(order.order_id)
    response = await payment_app.client.get(
        "/payments", params={"order_id": str(order.order_id)}, headers=as_user(7)
    )
    assert response.status_code == 200
    [payment] = response.json()["items"]
    assert payment["id"] == event.payload["payment_id"]
    assert (payment["kind"], payment["status"], payment["user_id"]) == ("charge", "succeeded", 7)
    assert payment["provider_ref"].startswith("ch_")


async def test_declined_charge_publishes_payment_failed_with_the_reason_and_no_retry(
    payment_app: Any, broker: Any, as_admin: dict[str, str]
) -> None:
    retries_before = MESSAGES_CONSUMED.labels("payment.order-events", "retry")._value.get()
    order = await broker.stock_reserved("900.00")  # above the test limit of 500.00

    event = await broker.result(order.order_id, "payment.failed")

    assert "above the card limit" in event.payload["reason"]
    response = await payment_app.client.get(
        "/payments", params={"order_id": str(order.order_id)}, headers=as_admin
    )
    [payment] = response.json()["items"]
    assert payment["status"] == "declined"
    assert payment["provider_ref"] is None
    assert "above the card limit" in payment["reason"]
    assert MESSAGES_CONSUMED.labels("payment.order-events", "retry")._value.get() == retries_before
    assert payment_app.provider.charge_count == 0


async def test_provider_down_retries_through_delay_tiers_until_switched_back_by_the_admin(
    payment_app: Any, broker: Any, as_admin: dict[str, str], eventually: Poll
) -> None:
    switched = await payment_app.client.put(
        "/payments/admin/provider", json={"down": True}, headers=as_admin
    )
    assert switched.status_code == 200
    assert switched.json()["down"] is True
    order = await broker.stock_reserved("30.00")
    retries = MESSAGES_CONSUMED.labels("payment.order-events", "retry")

    before = retries._value.get()

    async def retried_a_few_times() -> bool:
        return bool(retries._value.get() - before >= 3)

    await eventually(retried_a_few_times)
    state = (await payment_app.client.get("/payments/admin/provider", headers=as_admin)).json()
    assert state["unavailable_answers"] >= 1
    assert broker.results_for(order.order_id) == []

    restored = await payment_app.client.put(
        "/payments/admin/provider", json={"down": False}, headers=as_admin
    )
    assert restored.json()["down"] is False

    await broker.result(order.order_id, "payment.succeeded")
    assert payment_app.provider.charge_count == 1
    state = (await payment_app.client.get("/payments/admin/provider", headers=as_admin)).json()
    assert state["breaker_state"] == "closed"


async def test_cancelling_a_paid_order_refunds_it_once(
    payment_app: Any, broker: Any, as_user: Callable[[int], dict[str, str]]
) -> None:
    order = await broker.stock_reserved("44.00", user_id=9)
    charged = await broker.result(order.order_id, "payment.succeeded")

    await broker.order_cancelled(order.order_id, user_id=9)
    await broker.order_cancelled(order.order_id, user_id=9)  # a second cancel: no second refund

    refunded = await broker.result(order.order_id, "payment.refunded")
    assert refunded.payload["amount"] == "44.0000"
    assert refunded.causation_id is not None
    response = await payment_app.client.get(
        "/payments", params={"order_id": str(order.order_id)}, headers=as_user(9)
    )
    kinds = [(p["kind"], p["status"]) for p in response.json()["items"]]
    assert kinds == [("charge", "succeeded"), ("refund", "succeeded")]
    assert response.json()["items"][0]["id"] == charged.payload["payment_id"]
    assert [e.event_type for e in broker.results_for(order.order_id)].count("payment.refunded") == 1


async def test_the_same_message_delivered_three_times_charges_once(
    payment_app: Any, broker: Any, eventually: Poll
) -> None:
    event = StockReserved(
        order_id=uuid4(),
        user_id=3,
        items=[StockLine(sku="A", quantity=2)],
        total=Decimal("10.00"),
        currency="EUR",
    )
    envelope = new_event("stock.reserved", event)
    acks = MESSAGES_CONSUMED.labels("payment.order-events", "ack")
    before = acks._value.get()
    for _ in range(3):
        await broker.publish(envelope)

    async def all_three_handled() -> bool:
        return bool(acks._value.get() - before >= 3)

    await eventually(all_three_handled)
    await broker.result(event.order_id, "payment.succeeded")
    async with payment_app.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT count(*) FROM payments WHERE order_id = :o"), {"o": event.order_id}
            )
        ).scalar()
        outbox = (
            await conn.execute(
                text("SELECT count(*) FROM outbox WHERE aggregate_id = :o"),
                {"o": str(event.order_id)},
            )
        ).scalar()
    assert (rows, outbox, payment_app.provider.charge_count) == (1, 1, 1)


async def test_transient_provider_failures_are_retried_until_every_order_is_charged_once(
    payment_app: Any, broker: Any, as_admin: dict[str, str], eventually: Poll
) -> None:
    await payment_app.client.put(
        "/payments/admin/provider", json={"transient_failure_rate": 0.6}, headers=as_admin
    )
    retries = MESSAGES_CONSUMED.labels("payment.order-events", "retry")
    before = retries._value.get()
    orders = [await broker.stock_reserved("6.00") for _ in range(12)]  # P(no failure) = 0.4**12

    async def all_charged() -> bool:
        return all(
            any(e.event_type == "payment.succeeded" for e in broker.results_for(o.order_id))
            for o in orders
        )

    await eventually(all_charged, timeout=40)
    assert retries._value.get() > before, "some charges met a transient failure and were retried"
    assert payment_app.provider.charged_keys == {o.order_id for o in orders}
    assert len([e for e in broker.results if e.event_type == "payment.succeeded"]) == 12
