"""Issue 4 §6, the lifecycle through real processes: order → payment → result → order.

PAID, declined → PAYMENT_FAILED, cancel of a paid order → REFUNDED, the Idempotency-Key, illegal
transitions (409) and another user's order (404: the order service answers "not found" rather
than 403, so that an order id does not reveal that the order exists), and an undecodable message
going to the DLQ at once. The tests of this module share one pipeline (none stops a process); each
works with its own users and leaves no message behind.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from shop_common.messaging import connect
from shop_common.messaging.dlq import dlq_name, list_dead_letters
from shop_devstack.pipeline import Pipeline
from shop_testing.wait import eventually

from .conftest import BOOK, orders_of, payments_of, publish_raw, queue_depth, shop_for

pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]


@pytest.fixture
def pipeline(shared_pipeline: Pipeline) -> Pipeline:
    """This module's tests share the module's pipeline."""
    return shared_pipeline


# 60 × 189.99 = 11,399.40 EUR: above the simulated card limit (10,000), so declined.
EXPENSIVE = {"sku": "BOOK-005", "quantity": 60}


async def test_an_order_is_charged_once_and_becomes_paid(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    order = await shop.place_ok([BOOK, {"sku": "CLTH-005", "quantity": 3}])
    assert order["status"] == "PENDING"
    assert order["total"] == "179.95"  # priced by the shop: 2 × 41.99 + 3 × 31.99, exactly

    await shop.wait_status([order["id"]], "PAID")

    rows = await payments_of(pipeline, [order["id"]])
    assert [(r["kind"], r["status"]) for r in rows] == [("charge", "succeeded")]


async def test_a_declined_charge_fails_the_order_without_retrying(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    order = await shop.place_ok([EXPENSIVE])

    await shop.wait_status([order["id"]], "PAYMENT_FAILED")

    body = (await shop.get(order["id"])).json()
    assert "limit" in body["failure_reason"]
    rows = await payments_of(pipeline, [order["id"]])
    assert [(r["kind"], r["status"]) for r in rows] == [("charge", "declined")]


async def test_cancelling_a_paid_order_refunds_it(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    order = await shop.place_ok()
    await shop.wait_status([order["id"]], "PAID")

    cancelled = await shop.cancel(order["id"])

    assert cancelled.status_code in (200, 202), cancelled.text
    assert cancelled.json()["status"] == "CANCELLED_REFUND_PENDING"
    await shop.wait_status([order["id"]], "REFUNDED")
    rows = await payments_of(pipeline, [order["id"]])
    assert sorted((r["kind"], r["status"]) for r in rows) == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]


async def test_an_idempotency_key_replay_returns_the_same_order_and_charges_once(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    first = await shop.place([BOOK], key="checkout-1")
    again = await shop.place([BOOK], key="checkout-1")
    other_body = await shop.place([BOOK, BOOK], key="checkout-1")

    assert first.status_code == 201, first.text
    assert again.status_code in (200, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    assert other_body.status_code == 422
    assert other_body.headers["content-type"].startswith("application/problem+json")

    assert await orders_of(pipeline, shop.user_id) == [first.json()["id"]]
    await shop.wait_status([first.json()["id"]], "PAID")
    rows = await payments_of(pipeline, [first.json()["id"]])
    assert [r["kind"] for r in rows] == ["charge"]


async def test_illegal_transitions_are_refused_with_409(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    shop = await shop_for(pipeline, http)
    declined = await shop.place_ok([EXPENSIVE])
    await shop.wait_status([declined["id"]], "PAYMENT_FAILED")
    paid = await shop.place_ok()
    await shop.wait_status([paid["id"]], "PAID")
    assert (await shop.cancel(paid["id"])).status_code in (200, 202)
    await shop.wait_status([paid["id"]], "REFUNDED")

    for order_id in (declined["id"], paid["id"]):  # terminal states: nothing to cancel
        refused = await shop.cancel(order_id)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert await shop.status(declined["id"]) == "PAYMENT_FAILED"
    assert await shop.status(paid["id"]) == "REFUNDED"


async def test_another_users_order_is_not_found_but_an_admin_sees_it(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    owner = await shop_for(pipeline, http)
    stranger = await shop_for(pipeline, http)
    order = await owner.place_ok()

    assert (await stranger.get(order["id"])).status_code == 404
    assert (await stranger.cancel(order["id"])).status_code == 404
    admin = owner.as_(pipeline.token(0, ("admin",)), 0)
    seen = await admin.get(order["id"])
    assert seen.status_code == 200
    assert seen.json()["user_id"] == order["user_id"]
    await owner.wait_status([order["id"]], "PAID")  # the stranger's cancel changed nothing


async def test_an_undecodable_message_goes_to_the_dlq_at_once_with_its_headers(
    pipeline: Pipeline,
) -> None:
    work_queue = "payment.order-events"
    broker = await connect(pipeline.config.amqp_url, attempts=3, name="pipeline-test")
    try:
        message_id = f"bad-{uuid.uuid4().hex[:8]}"
        await publish_raw(
            broker, "catalog", "stock.reserved", b'{"not": "an envelope"', message_id=message_id
        )

        async def dead_lettered() -> bool:
            return await queue_depth(broker, dlq_name(work_queue)) == 1

        await eventually(dead_lettered, what="the undecodable message in the DLQ")
        (letter,) = await list_dead_letters(broker, work_queue)
        assert (letter.message_id, letter.attempts) == (message_id, 1)  # no retry: it cannot pass
        assert letter.error is not None
        assert letter.error.startswith("undecodable")
        assert (letter.original_exchange, letter.original_routing_key) == (
            "catalog",
            "stock.reserved",
        )
        assert await queue_depth(broker, work_queue) == 0
    finally:
        channel = await broker.channel()  # leave the module's DLQ empty
        await (await channel.declare_queue(dlq_name(work_queue), passive=True)).purge()
        await broker.close()
