"""shop_saga_outcomes_total counts a saga's end once, when its transition commits: the same
payment.succeeded delivered twice is one "paid"; a cancel of a PENDING order is "cancelled"."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from shop_common.messaging import PaymentSucceeded, Publisher, new_event
from shop_testing.scrape import Samples, parse
from shop_testing.wait import eventually

from .conftest import ITEMS, RunningApp, Shopper, bearer

pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]

RESULTS = "order.payment-results"


async def metrics(running: RunningApp) -> Samples:
    response = await running.http.get("/metrics")
    assert response.status_code == 200
    return parse(response.text)


async def test_a_payment_delivered_twice_is_one_paid_outcome(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    created = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    order_id = created.json()["id"]
    before = await metrics(running)
    succeeded = new_event(
        "payment.succeeded",
        PaymentSucceeded(
            payment_id=uuid.uuid4(),
            order_id=uuid.UUID(order_id),
            amount=Decimal("20.50"),
            currency="EUR",
        ),
    )
    publisher = Publisher(running.runtime.broker)
    await publisher.publish("payments", succeeded)
    await publisher.publish("payments", succeeded)  # the same event id: a duplicate

    async def both_handled() -> bool:
        now = await metrics(running)
        handled = now.value("shop_messages_consumed_total", queue=RESULTS) - before.value(
            "shop_messages_consumed_total", queue=RESULTS
        )
        return handled >= 2

    await eventually(both_handled, what="both deliveries consumed")
    after = await metrics(running)
    paid = "shop_saga_outcomes_total"
    assert after.value(paid, outcome="paid") - before.value(paid, outcome="paid") == 1
    status = await running.http.get(f"/orders/{order_id}", headers=bearer(token))
    assert status.json()["status"] == "PAID"
    # Every outcome's series exists from the start, so a dashboard's rate() sees zeros.
    assert after.label_values(paid, "outcome") >= {
        "paid",
        "payment_failed",
        "expired",
        "cancelled",
        "refunded",
    }


async def test_cancelling_a_pending_order_is_a_cancelled_outcome(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    created = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    before = await metrics(running)
    cancelled = await running.http.post(
        f"/orders/{created.json()['id']}/cancel", headers=bearer(token)
    )
    assert cancelled.json()["status"] == "CANCELLED"
    again = await running.http.post(f"/orders/{created.json()['id']}/cancel", headers=bearer(token))
    assert again.status_code == 409  # refused: not a second outcome
    after = await metrics(running)
    name = "shop_saga_outcomes_total"
    assert after.value(name, outcome="cancelled") - before.value(name, outcome="cancelled") == 1
