"""MessagingMonitor: the depth of every queue a service consumes, its retry tiers and its DLQ,
sampled into the shared gauge and scraped as Prometheus reads it; a missing queue is left out."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from prometheus_client import REGISTRY, generate_latest
from shop_common.messaging import SHOP_TOPOLOGY, declare
from shop_common.messaging.monitor import MessagingMonitor, queue_depths
from shop_testing.scrape import parse

pytestmark = pytest.mark.infra

WORK = "order.payment-results"
DLQ = "order.payment-results.dlq"


def test_a_consumer_watches_its_work_queue_every_retry_tier_and_its_dlq() -> None:
    spec = SHOP_TOPOLOGY.queue(WORK)
    tiers = [f"{WORK}.retry.{n}" for n in range(len(spec.retry_delays_ms))]
    assert SHOP_TOPOLOGY.monitored_queues([WORK]) == (WORK, *tiers, DLQ)
    # A tap has neither tiers nor a DLQ.
    assert SHOP_TOPOLOGY.monitored_queues(["order.status-events"]) == ("order.status-events",)
    with pytest.raises(KeyError):
        SHOP_TOPOLOGY.monitored_queues(["no.such-queue"])


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


async def test_a_work_queue_a_retry_tier_and_a_dlq_are_each_sampled(
    amqp_vhost_url: str,
) -> None:
    topology = SHOP_TOPOLOGY.with_retry_delays((60_000, 120_000))
    connection = await aio_pika.connect_robust(amqp_vhost_url)
    async with connection:
        channel = await connection.channel()
        await declare(channel, topology)
        retry = f"{WORK}.retry.1"
        for queue, count in ((WORK, 2), (retry, 4), (DLQ, 1)):
            for _ in range(count):
                message = aio_pika.Message(b"{}")
                await channel.default_exchange.publish(message, routing_key=queue)
        await channel.close()
        monitor = MessagingMonitor(connection, topology.monitored_queues([WORK]), interval=60)
        sampled = await monitor.sample()
        assert sampled == {WORK: 2, f"{WORK}.retry.0": 0, retry: 4, DLQ: 1}
    scraped = parse(generate_latest(REGISTRY).decode())
    assert scraped.value("shop_queue_depth", queue=WORK) == 2
    assert scraped.value("shop_queue_depth", queue=retry) == 4
    assert scraped.value("shop_queue_depth", queue=DLQ) == 1
