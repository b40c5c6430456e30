"""Robust connection: consumers resume after dropped connections; publishing fails fast meanwhile."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    Consumer,
    DeliveryInfo,
    EventEnvelope,
    PaymentFailed,
    Publisher,
    PublishError,
    connect,
    declare,
    is_connected,
    new_event,
)
from shop_testing.wait import eventually

from .conftest import (
    FAST_TOPOLOGY,
    CuttableProxy,
    broker_address,
    close_vhost_connections,
    via_proxy,
)

pytestmark = pytest.mark.infra

QUEUE = "order.payment-results"


def payment_failed() -> EventEnvelope:
    return new_event("payment.failed", PaymentFailed(order_id=uuid.uuid4(), reason="card"))


async def publish_until_confirmed(publisher: Publisher, event: EventEnvelope) -> int:
    """Publish, retrying while the connection recovers; returns how many attempts failed."""
    failures = 0
    while True:
        try:
            await publisher.publish("payments", event)
            return failures
        except PublishError:
            failures += 1
            await asyncio.sleep(0.05)


async def test_consumer_resumes_after_the_broker_drops_its_connections(
    connection: AbstractRobustConnection, amqp_vhost_url: str
) -> None:
    received: set[uuid.UUID] = set()

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        received.add(envelope.event_id)

    worker = Consumer(connection, QUEUE, handler, topology=FAST_TOPOLOGY)
    await worker.start()
    publisher = Publisher(connection)
    before = payment_failed()
    await publisher.publish("payments", before)

    async def got_before() -> bool:
        return before.event_id in received

    await eventually(got_before, what="the first message")
    for _ in range(2):  # twice: recovery must itself be recoverable
        assert await asyncio.to_thread(close_vhost_connections, amqp_vhost_url) >= 1
        after = [payment_failed() for _ in range(20)]
        for event in after:
            await asyncio.wait_for(publish_until_confirmed(publisher, event), 30)

        async def got_all(batch: list[EventEnvelope] = after) -> bool:
            return {event.event_id for event in batch} <= received

        await eventually(got_all, what="every message published after the reconnect")
    await worker.stop()


async def test_publishing_while_the_broker_is_unreachable_fails_fast_then_recovers(
    amqp_vhost_url: str,
) -> None:
    proxy = CuttableProxy(*broker_address(amqp_vhost_url))
    await proxy.start()
    conn = await connect(via_proxy(amqp_vhost_url, proxy.port), attempts=3, reconnect_interval=0.1)
    channel = await conn.channel()
    await declare(channel, FAST_TOPOLOGY)
    received: list[uuid.UUID] = []

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        received.append(envelope.event_id)

    worker = Consumer(conn, QUEUE, handler, topology=FAST_TOPOLOGY)
    await worker.start()
    publisher = Publisher(conn, confirm_timeout=30)
    await publisher.publish("payments", payment_failed())
    await proxy.cut()

    async def disconnected() -> bool:
        return not is_connected(conn)

    await eventually(disconnected, what="the client to notice the cut")
    # The confirm timeout is 30 s: only failing fast can finish inside the 5 s bound.
    with pytest.raises(PublishError, match="reconnecting"):
        await asyncio.wait_for(publisher.publish("payments", payment_failed()), 5)
    await proxy.start()  # the broker is reachable again on the same port
    event = payment_failed()
    await asyncio.wait_for(publish_until_confirmed(publisher, event), 30)

    async def consumed() -> bool:
        return event.event_id in received

    await eventually(consumed, what="consumption resumed after the reconnect")
    await worker.stop()
    await conn.close()
    await proxy.cut()
