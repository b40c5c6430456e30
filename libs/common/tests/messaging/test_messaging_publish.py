"""Publisher: message properties, confirms, returns, priority, expiration, topic fan-out."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
import structlog
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    EventEnvelope,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    OrderStatusChanged,
    Publisher,
    StockLine,
    StockReserved,
    UnroutableError,
    UserChanged,
    connect,
    declare,
    new_event,
)
from shop_common.messaging import connection as connection_module
from shop_common.messaging.connection import AMQP_CONNECT_RETRY, BrokerUnavailableError
from shop_testing.wait import eventually

from .conftest import FAST_TOPOLOGY, get_one, queue_depth

pytestmark = pytest.mark.infra


def order_created() -> EventEnvelope:
    return new_event(
        "order.created",
        OrderCreated(
            order_id=uuid.uuid4(),
            user_id=7,
            items=[OrderItem(sku="SKU-1", quantity=2, unit_price=Decimal("9.95"))],
            total=Decimal("19.90"),
            currency="EUR",
        ),
        correlation_id="corr-1",
    )


async def test_published_message_carries_event_id_correlation_request_id_and_is_persistent(
    connection: AbstractRobustConnection,
) -> None:
    publisher = Publisher(connection)
    envelope = order_created()
    structlog.contextvars.bind_contextvars(request_id="req-42")
    try:
        await publisher.publish("orders", envelope)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    message = await get_one(connection, "catalog.order-events")  # order.created: the catalog's
    assert message.message_id == str(envelope.event_id)
    assert message.correlation_id == "corr-1"
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2
    assert message.type == "order.created"
    assert message.timestamp is not None
    assert message.headers["x-request-id"] == "req-42"
    # No span is active (tracing is off): no trace is made up (tests/.../test_messaging_tracing).
    assert "traceparent" not in message.headers
    decoded = EventEnvelope.from_json(message.body)
    assert decoded == envelope
    assert decoded.payload["total"] == "19.90"  # money travels as a string
    await publisher.close()


async def test_unroutable_message_raises_instead_of_being_dropped(
    connection: AbstractRobustConnection,
) -> None:
    publisher = Publisher(connection)
    with pytest.raises(UnroutableError, match=r"order\.shipped"):
        await publisher.publish("orders", order_created(), routing_key="order.shipped")
    await publisher.publish("orders", order_created())  # the channel survives the return
    await publisher.close()


async def test_declaring_the_topology_twice_is_harmless(
    connection: AbstractRobustConnection,
) -> None:
    channel = await connection.channel()
    first = await declare(channel, FAST_TOPOLOGY)
    second = await declare(channel, FAST_TOPOLOGY)
    assert first.keys() == second.keys()
    assert "payment.order-events.retry.2" in first
    assert "payment.order-events.dlq" in first
    await channel.close()


async def test_refunds_overtake_queued_charges_on_the_priority_queue(
    connection: AbstractRobustConnection,
) -> None:
    publisher = Publisher(connection)
    for _ in range(5):  # charges waiting: stock.reserved from the catalog
        created = order_created()
        reserved = StockReserved(
            order_id=uuid.UUID(created.payload["order_id"]),
            user_id=7,
            items=[StockLine(sku="BOOK-001", quantity=1)],
            total=Decimal("19.90"),
            currency="EUR",
        )
        await publisher.publish("catalog", new_event("stock.reserved", reserved))
    cancel = new_event(
        "order.cancelled",
        OrderCancelled(order_id=uuid.uuid4(), user_id=7, refund_required=True),
    )
    await publisher.publish("orders", cancel)  # topology gives order.cancelled priority 9
    first = await get_one(connection, "payment.order-events")
    assert first.message_id == str(cancel.event_id)
    assert first.priority == 9
    await publisher.close()


async def test_expired_message_is_dead_lettered_not_dropped(
    connection: AbstractRobustConnection,
) -> None:
    publisher = Publisher(connection)
    envelope = order_created()
    await publisher.publish("orders", envelope, expiration=0.05)

    async def in_dlq() -> bool:
        return await queue_depth(connection, "catalog.order-events.dlq") == 1

    await eventually(in_dlq, what="expired message in the DLQ")
    message = await get_one(connection, "catalog.order-events.dlq")
    assert message.message_id == str(envelope.event_id)
    await publisher.close()


async def test_user_events_fan_out_to_every_bound_queue(
    connection: AbstractRobustConnection,
) -> None:
    publisher = Publisher(connection)
    event = new_event(
        "user.updated", UserChanged(user_id=1, email="a@example.com", name="A", roles=["user"])
    )
    await publisher.publish("users", event)
    for queue in ("order.user-changes", "gateway.user-changes"):
        message = await get_one(connection, queue)
        assert message.message_id == str(event.event_id)
    assert await queue_depth(connection, "payment.order-events") == 0
    await publisher.close()


async def test_first_connect_is_retried_until_the_broker_answers(
    amqp_vhost_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that starts listening late stands in for a broker that is not up yet."""
    parts = amqp_vhost_url.split("@", 1)
    host_port, vhost = parts[1].split("/", 1)
    broker_host, broker_port = host_port.split(":") if ":" in host_port else (host_port, "5672")
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(broker_host, int(broker_port))
        await asyncio.gather(pipe(client_r, broker_w), pipe(broker_r, client_w))

    refused: list[object] = []  # connect() logs each failed attempt: count them

    class AttemptLog:
        def warning(self, event: str, **fields: object) -> None:
            refused.append(fields.get("attempt"))

    monkeypatch.setattr(connection_module, "log", AttemptLog())
    late_url = f"{parts[0]}@127.0.0.1:{port}/{vhost}"
    attempts, initial_delay, max_delay = 50, 0.05, 0.1
    connecting = asyncio.create_task(
        connect(
            late_url,
            retry=replace(
                AMQP_CONNECT_RETRY,
                max_attempts=attempts,
                initial_backoff=initial_delay,
                max_backoff=max_delay,
            ),
        )
    )
    # The broker "comes up" after a few refused attempts; connect's own schedule (its sleeps
    # between 50 attempts) is how long those can take before it gives up.
    await eventually(
        lambda: len(refused) >= 3,
        timeout=initial_delay + max_delay * (attempts - 2),
        what="three refused attempts",
    )
    assert refused[:3] == [1, 2, 3] and not connecting.done()
    server = await asyncio.start_server(forward, "127.0.0.1", port)
    conn = await asyncio.wait_for(connecting, 20)
    assert not conn.is_closed
    await conn.close()
    server.close()


async def test_connect_gives_up_with_a_named_error(amqp_vhost_url: str) -> None:
    with pytest.raises(BrokerUnavailableError, match="after 2 attempts"):
        await connect(
            "amqp://guest:guest@127.0.0.1:1/",
            retry=replace(AMQP_CONNECT_RETRY, max_attempts=2, initial_backoff=0.01),
        )


async def test_order_status_events_are_routable_to_the_bounded_tap(
    connection: AbstractRobustConnection,
) -> None:
    publisher = Publisher(connection)
    event = new_event("order.paid", OrderStatusChanged(order_id=uuid.uuid4(), status="PAID"))
    await publisher.publish("orders", event)  # mandatory: would raise without a binding
    message = await get_one(connection, "order.status-events")
    assert message.message_id == str(event.event_id)
    await publisher.close()
