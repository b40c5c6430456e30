"""The typed handler registry (pure logic: no broker; the consumers' tests run it on RabbitMQ)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from shop_common.messaging.events import (
    EventEnvelope,
    PaymentFailed,
    PaymentSucceeded,
    UserChanged,
    new_event,
)
from shop_common.messaging.handlers import Handlers, Incoming, exchange_of
from shop_common.messaging.outcomes import DeliveryInfo, PermanentError, RetryableError
from shop_common.messaging.topology import SHOP_TOPOLOGY, Binding, QueueSpec, Topology

QUEUE = "order.payment-results"


class Flaky(Exception):
    pass


def delivery(attempt: int = 1) -> DeliveryInfo:
    return DeliveryInfo(QUEUE, "payments", "payment.succeeded", attempt, False, None)


def succeeded(order_id: uuid.UUID) -> EventEnvelope:
    payload = PaymentSucceeded(
        payment_id=uuid.uuid4(), order_id=order_id, amount=Decimal("12.50"), currency="EUR"
    )
    return new_event("payment.succeeded", payload)


def registry(seen: list[object]) -> Handlers[list[object]]:
    handlers = Handlers[list[object]](QUEUE, retryable=(Flaky,))

    @handlers.handles("payment.succeeded")
    async def on_succeeded(event: PaymentSucceeded, sink: list[object], msg: Incoming) -> str:
        sink.append((event.order_id, msg.envelope.event_id, msg.delivery.attempt))
        if event.currency == "GBP":
            raise Flaky("the provider is busy")
        return "paid"

    handlers.ignores("payment.refunded")
    return handlers


async def test_an_event_reaches_its_handler_with_the_typed_payload_and_the_delivery() -> None:
    seen: list[object] = []
    order_id = uuid.uuid4()
    envelope = succeeded(order_id)
    await registry(seen).bind(seen)(envelope, delivery(attempt=2))
    assert seen == [(order_id, envelope.event_id, 2)]


async def test_an_ignored_type_is_acknowledged_without_a_call() -> None:
    seen: list[object] = []
    envelope = EventEnvelope(event_type="payment.refunded", payload={"anything": 1})
    await registry(seen).bind(seen)(envelope, delivery())
    assert seen == []


async def test_a_type_nobody_takes_is_permanent() -> None:
    envelope = EventEnvelope(event_type="payment.failed", payload={})
    with pytest.raises(PermanentError, match=re.escape("takes no 'payment.failed'")):
        await registry([]).bind([])(envelope, delivery())


async def test_an_invalid_payload_is_permanent_and_calls_nothing() -> None:
    seen: list[object] = []
    envelope = EventEnvelope(event_type="payment.succeeded", payload={"order_id": "nope"})
    with pytest.raises(PermanentError, match=re.escape("invalid payment.succeeded payload")):
        await registry(seen).bind(seen)(envelope, delivery())
    assert seen == []


async def test_a_named_exception_becomes_retryable_and_others_propagate() -> None:
    payload = succeeded(uuid.uuid4()).payload | {"currency": "GBP"}
    envelope = EventEnvelope(event_type="payment.succeeded", payload=payload)
    with pytest.raises(RetryableError, match="busy"):
        await registry([]).bind([])(envelope, delivery())


def test_the_payload_model_must_be_the_one_the_event_type_carries() -> None:
    handlers = Handlers[None](QUEUE)
    with pytest.raises(
        TypeError, match=re.escape("payment.failed carries PaymentFailed, not UserChanged")
    ):

        @handlers.handles("payment.failed")
        async def wrong(event: UserChanged, deps: None, msg: Incoming) -> None:
            return None


def test_a_handler_must_annotate_its_payload_and_take_three_parameters() -> None:
    handlers = Handlers[None](QUEUE)
    with pytest.raises(TypeError, match="annotate its first parameter"):

        @handlers.handles("payment.failed")
        async def untyped(event: int, deps: None, msg: Incoming) -> None:
            return None

    with pytest.raises(TypeError, match=r"must take \(event, deps, incoming\)"):
        handlers.handles("payment.failed")(lambda event, deps: None)  # type: ignore[arg-type,return-value]


def test_a_type_is_registered_once_and_must_belong_to_a_publisher() -> None:
    handlers = registry([])
    with pytest.raises(ValueError, match="registered twice"):
        handlers.ignores("payment.succeeded")
    with pytest.raises(ValueError, match=re.escape("no exchange publishes 'invoice.sent'")):
        handlers.ignores("invoice.sent")


def test_bindings_are_derived_from_the_registered_types() -> None:
    assert registry([]).bindings() == (
        Binding("payments", "payment.refunded"),
        Binding("payments", "payment.succeeded"),
    )
    assert exchange_of("user.deleted") == "users"


def test_check_accepts_exact_and_wildcard_bindings_and_names_every_mismatch() -> None:
    handlers = registry([])

    @handlers.handles("payment.failed")
    async def failed(event: PaymentFailed, sink: list[object], msg: Incoming) -> None:
        return None

    narrow = Topology(
        exchanges=SHOP_TOPOLOGY.exchanges,
        queues=(
            QueueSpec(QUEUE, (Binding("payments", "payment.succeeded"), Binding("users", "#"))),
        ),
    )
    with pytest.raises(ValueError, match="the topology misses") as caught:
        handlers.check(narrow)
    message = str(caught.value)
    assert "misses ['payment.failed', 'payment.refunded']" in message
    assert "'user.created', 'user.deleted', 'user.updated'" in message
    # payment.* on the payments exchange, the stock results on the catalog exchange
    handlers.ignores("stock.rejected", "stock.released")
    handlers.check(SHOP_TOPOLOGY)
