"""The saga seen over HTTP: payment.* events move the order; cancel of a paid order refunds;
the timeout fails and compensates a PENDING order. The real catalog of the fixtures takes part:
it reserves the order's stock and sends stock.reserved to the payment service's queue, which
these tests read in place of a payment service."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from shop_common.messaging import (
    PaymentRefunded,
    PaymentSucceeded,
    Publisher,
    new_event,
)
from shop_testing.wait import eventually

from .conftest import ITEMS, RunningApp, Shopper, StartApp, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


async def order_status(running: RunningApp, token: str, order_id: str) -> dict[str, Any]:
    response = await running.http.get(f"/orders/{order_id}", headers=bearer(token))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def wait_status(running: RunningApp, token: str, order_id: str, wanted: str) -> None:
    async def reached() -> bool:
        return (await order_status(running, token, order_id))["status"] == wanted

    await eventually(reached, what=f"order {order_id} {wanted}")


async def order_events(running: RunningApp, order_id: str) -> list[dict[str, Any]]:
    """The envelopes of this order waiting in the payment service's queue (stock.reserved from
    the catalog, order.cancelled from the order service)."""
    channel = await running.runtime.broker.channel()
    try:
        queue = await channel.declare_queue("payment.order-events", passive=True)
        found = []
        while (message := await queue.get(fail=False, no_ack=False)) is not None:
            envelope = json.loads(message.body)
            if envelope["payload"]["order_id"] == order_id:
                found.append(envelope)
        return found  # unacked messages go back to the queue when the channel closes
    finally:
        await channel.close()


async def test_paid_then_cancelled_then_refunded(running: RunningApp, shopper: Shopper) -> None:
    _, token = await shopper()
    created = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    order_id = created.json()["id"]
    publisher = Publisher(running.runtime.broker)
    succeeded = new_event(
        "payment.succeeded",
        PaymentSucceeded(
            payment_id=uuid.uuid4(),
            order_id=uuid.UUID(order_id),
            amount=Decimal("20.50"),
            currency="EUR",
        ),
    )
    await publisher.publish("payments", succeeded)
    await publisher.publish("payments", succeeded)  # a redelivery has no second effect
    await wait_status(running, token, order_id, "PAID")

    cancelled = await running.http.post(f"/orders/{order_id}/cancel", headers=bearer(token))
    assert cancelled.json()["status"] == "CANCELLED_REFUND_PENDING"

    async def cancellation_published() -> bool:
        events = await order_events(running, order_id)
        # A priority queue: order.cancelled (refund priority) may overtake stock.reserved.
        return sorted(e["event_type"] for e in events) == ["order.cancelled", "stock.reserved"]

    await eventually(cancellation_published, what="order.cancelled on payment.order-events")
    events = {e["event_type"]: e for e in await order_events(running, order_id)}
    assert events["order.cancelled"]["payload"]["refund_required"] is True

    refunded = PaymentRefunded(
        payment_id=uuid.uuid4(),
        order_id=uuid.UUID(order_id),
        amount=Decimal("20.50"),
        currency="EUR",
    )
    await publisher.publish("payments", new_event("payment.refunded", refunded))
    await wait_status(running, token, order_id, "REFUNDED")
    await publisher.close()


async def test_saga_timeout_fails_a_pending_order_and_asks_for_a_refund(
    start_app: StartApp, shopper: Shopper
) -> None:
    running = await start_app(saga_timeout_seconds=0.5, saga_sweep_interval_seconds=0.2)
    _, token = await shopper()
    created = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    order_id = created.json()["id"]
    await wait_status(running, token, order_id, "PAYMENT_FAILED")
    assert (await order_status(running, token, order_id))["failure_reason"] == "payment timed out"

    async def compensation_published() -> bool:
        events = await order_events(running, order_id)
        # A priority queue: order.cancelled (refund priority) may overtake stock.reserved.
        return sorted(e["event_type"] for e in events) == ["order.cancelled", "stock.reserved"]

    await eventually(compensation_published, what="the compensating order.cancelled")
