"""The payment handler on a real RabbitMQ vhost: charge, retry through tiers when down, poison → DLQ."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from uuid import uuid4

import aio_pika
import pytest
from payment_service.adapters.provider.simulated import SimulatedProvider
from payment_service.adapters.unit_of_work import SqlUnitOfWorkFactory
from payment_service.entrypoints.consumers import order_events
from payment_service.service_layer.payments import PaymentService
from payment_service.service_layer.provider import ProviderFaults
from shop_common.messaging.connection import connect
from shop_common.messaging.consumer import Consumer
from shop_common.messaging.events import StockLine, StockReserved, new_event
from shop_common.messaging.publisher import Publisher
from shop_common.messaging.topology import SHOP_TOPOLOGY, Topology
from shop_common.migrations import migrate
from shop_testing.wait import eventually
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.infra

QUEUE = "payment.order-events"
FAST = Topology(
    exchanges=SHOP_TOPOLOGY.exchanges,
    queues=(replace(SHOP_TOPOLOGY.queue(QUEUE), retry_delays_ms=(100, 200)),),
    priorities=SHOP_TOPOLOGY.priorities,
)


@pytest.fixture
async def setup(
    database_url: str, amqp_vhost_url: str
) -> AsyncIterator[
    tuple[PaymentService, SimulatedProvider, Publisher, aio_pika.abc.AbstractRobustConnection]
]:
    await migrate("payment_service", database_url)
    engine = create_async_engine(database_url)
    provider = SimulatedProvider(ProviderFaults(latency_ms=0), rng=random.Random(5))
    service = PaymentService(SqlUnitOfWorkFactory(engine), provider)
    connection = await connect(amqp_vhost_url)
    consumer = Consumer(
        connection, QUEUE, order_events.bind(service), max_attempts=3, topology=FAST
    )
    await consumer.start()
    yield service, provider, Publisher(connection), connection
    await consumer.stop()
    await connection.close()
    await engine.dispose()


def created(total: str = "5.00") -> StockReserved:
    return StockReserved(
        order_id=uuid4(),
        user_id=1,
        items=[StockLine(sku="A", quantity=1)],
        total=Decimal(total),
        currency="EUR",
    )


async def test_provider_down_retries_then_charges_once(setup) -> None:  # type: ignore[no-untyped-def]
    service, provider, publisher, _ = setup
    provider.set_faults(down=True)
    event = created()
    await publisher.publish("catalog", new_event("stock.reserved", event))
    await publisher.publish("catalog", new_event("stock.reserved", event))

    async def both_failed() -> bool:
        return provider.unavailable_count >= 2

    await eventually(both_failed)  # both deliveries met the outage and went to a delay tier
    provider.set_faults(down=False)

    async def charged() -> bool:
        return len(await service.for_order(event.order_id)) == 1

    await eventually(charged)
    assert provider.charge_count == 1


async def test_poison_message_goes_to_dlq_with_headers(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, publisher, connection = setup
    poison = new_event("stock.reserved", created())
    poison.payload["total"] = "not-a-number"
    await publisher.publish("catalog", poison)
    channel = await connection.channel()
    dlq = await channel.declare_queue(SHOP_TOPOLOGY.queue(QUEUE).dlq, passive=True)
    message = None

    async def dead_lettered() -> bool:
        nonlocal message
        message = await dlq.get(fail=False)
        return message is not None

    await eventually(dead_lettered)
    assert message is not None
    assert message.message_id == str(poison.event_id)
    assert "undecodable" in str(message.headers.get("x-error"))
    await message.ack()


async def test_provider_down_for_good_dead_letters_after_max_attempts(setup) -> None:  # type: ignore[no-untyped-def]
    service, provider, publisher, connection = setup
    provider.set_faults(down=True)
    event = created()
    envelope = new_event("stock.reserved", event)
    await publisher.publish("catalog", envelope)
    channel = await connection.channel()
    dlq = await channel.declare_queue(SHOP_TOPOLOGY.queue(QUEUE).dlq, passive=True)
    message = None

    async def dead_lettered() -> bool:
        nonlocal message
        message = await dlq.get(fail=False)
        return message is not None

    await eventually(dead_lettered)
    assert message is not None
    assert message.headers["x-attempts"] == 3
    assert "down" in str(message.headers.get("x-error"))
    assert await service.for_order(event.order_id) == []
    await message.ack()
