"""MessagingMonitor: DLQ depths sampled into the shared gauge; a missing queue is left out."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from prometheus_client import REGISTRY
from shop_common.messaging.monitor import MessagingMonitor, queue_depths

pytestmark = pytest.mark.infra

DLQ = "order.payment-results.dlq"


async def test_depths_are_sampled_into_the_gauge(connection: AbstractRobustConnection) -> None:
    channel = await connection.channel()
    for _ in range(3):
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=DLQ)
    await channel.close()
    missing = f"no-such-queue-{uuid.uuid4().hex}"

    assert await queue_depths(connection, [DLQ, missing]) == {DLQ: 3}
    monitor = MessagingMonitor(connection, [DLQ, missing], interval=60)
    assert await monitor.sample() == {DLQ: 3}
    assert REGISTRY.get_sample_value("shop_queue_depth", {"queue": DLQ}) == 3
    await monitor.start()
    await monitor.stop()
