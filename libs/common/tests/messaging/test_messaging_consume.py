"""Consumer outcomes: ack, delay tiers with an attempt counter, DLQ with headers, limits."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    Consumer,
    DeliveryInfo,
    EventEnvelope,
    OrderStatusChanged,
    PaymentFailed,
    PermanentError,
    Publisher,
    RetryableError,
    new_event,
)
from shop_testing.wait import eventually

from .conftest import FAST_TOPOLOGY, get_one, queue_depth

pytestmark = pytest.mark.infra

QUEUE = "order.payment-results"


def payment_failed() -> EventEnvelope:
    return new_event("payment.failed", PaymentFailed(order_id=uuid.uuid4(), reason="declined"))


def consumer(conn: AbstractRobustConnection, handler, **kwargs) -> Consumer:  # type: ignore[no-untyped-def]
    return Consumer(conn, QUEUE, handler, topology=FAST_TOPOLOGY, **kwargs)


async def test_success_is_acked_once_with_a_typed_envelope(
    connection: AbstractRobustConnection,
) -> None:
    seen: list[tuple[EventEnvelope, DeliveryInfo]] = []

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        seen.append((envelope, info))

    worker = consumer(connection, handler)
    await worker.start()
    event = payment_failed()
    await Publisher(connection).publish("payments", event)

    async def handled() -> bool:
        return len(seen) == 1

    await eventually(handled, what="the handler")
    await worker.stop()
    envelope, info = seen[0]
    assert envelope.payload_as(PaymentFailed).reason == "declined"
    assert (info.exchange, info.routing_key, info.attempt) == ("payments", "payment.failed", 1)
    assert await queue_depth(connection, QUEUE) == 0
    assert await queue_depth(connection, f"{QUEUE}.dlq") == 0


async def test_retryable_failure_goes_through_delay_tiers_with_an_attempt_counter(
    connection: AbstractRobustConnection,
) -> None:
    attempts: list[DeliveryInfo] = []

    async def flaky(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        attempts.append(info)
        if info.attempt < 3:
            raise RetryableError("provider timeout")

    worker = consumer(connection, flaky, max_attempts=5)
    await worker.start()
    await Publisher(connection).publish("payments", payment_failed())

    async def third() -> bool:
        return len(attempts) == 3

    await eventually(third, what="three attempts")
    await worker.stop()
    assert [info.attempt for info in attempts] == [1, 2, 3]
    # Retries keep the original exchange and routing key, though they came back from a tier.
    assert {(i.exchange, i.routing_key) for i in attempts} == {("payments", "payment.failed")}
    assert attempts[1].headers["x-error"] == "RetryableError: provider timeout"
    assert await queue_depth(connection, f"{QUEUE}.dlq") == 0


async def test_after_max_attempts_the_message_lands_in_the_dlq_with_its_history(
    connection: AbstractRobustConnection,
) -> None:
    calls = 0

    async def broken(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug in handler")

    worker = consumer(connection, broken, max_attempts=4)
    await worker.start()
    event = payment_failed()
    await Publisher(connection).publish("payments", event)
    dead = await get_one(connection, f"{QUEUE}.dlq")
    await worker.stop()
    assert calls == 4  # exactly N attempts, never redelivered forever
    assert dead.message_id == str(event.event_id)
    assert dead.headers["x-attempts"] == 4
    assert dead.headers["x-error"] == "RuntimeError: bug in handler"
    assert dead.headers["x-original-exchange"] == "payments"
    assert dead.headers["x-original-routing-key"] == "payment.failed"
    assert dead.headers["x-failed-queue"] == QUEUE
    assert EventEnvelope.from_json(dead.body) == event


async def test_permanent_error_skips_the_retries(connection: AbstractRobustConnection) -> None:
    calls = 0

    async def rejects(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("unknown order")

    worker = consumer(connection, rejects, max_attempts=5)
    await worker.start()
    await Publisher(connection).publish("payments", payment_failed())
    dead = await get_one(connection, f"{QUEUE}.dlq")
    await worker.stop()
    assert calls == 1
    assert dead.headers["x-attempts"] == 1
    assert dead.headers["x-error"] == "permanent: unknown order"


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"event_type": "payment.failed"}',
        # a known event type whose payload does not match its model
        new_event("order.paid", OrderStatusChanged(order_id=uuid.uuid4(), status="PAID"))
        .model_copy(update={"event_type": "payment.failed"})
        .to_json(),
    ],
)
async def test_undecodable_message_goes_to_the_dlq_without_reaching_the_handler(
    connection: AbstractRobustConnection, body: bytes
) -> None:
    called = False

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        nonlocal called
        called = True

    worker = consumer(connection, handler)
    await worker.start()
    channel = await connection.channel()
    exchange = await channel.get_exchange("payments")
    await exchange.publish(aio_pika.Message(body, message_id="m-1"), routing_key="payment.failed")
    dead = await get_one(connection, f"{QUEUE}.dlq")
    await worker.stop()
    assert not called
    assert str(dead.headers["x-error"]).startswith("undecodable:")
    assert dead.headers["x-original-routing-key"] == "payment.failed"
    assert dead.body == body


async def test_concurrency_limit_caps_handlers_in_flight(
    connection: AbstractRobustConnection,
) -> None:
    gate = asyncio.Event()
    running = 0
    peak = 0
    done = 0

    async def slow(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        done += 1

    worker = consumer(connection, slow, prefetch=20, concurrency=3)
    await worker.start()
    publisher = Publisher(connection)
    for _ in range(10):
        await publisher.publish("payments", payment_failed())

    async def three_running() -> bool:
        return running == 3

    await eventually(three_running, what="three handlers in flight")
    gate.set()

    async def all_done() -> bool:
        return done == 10

    await eventually(all_done, what="all ten handled")
    await worker.stop()
    assert peak == 3


async def test_stop_finishes_the_messages_in_flight(connection: AbstractRobustConnection) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()
    finished: list[uuid.UUID] = []

    async def slow(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        started.set()
        await gate.wait()
        finished.append(envelope.event_id)

    worker = consumer(connection, slow)
    await worker.start()
    event = payment_failed()
    await Publisher(connection).publish("payments", event)
    await asyncio.wait_for(started.wait(), 20)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    gate.set()
    await asyncio.wait_for(stopping, 20)
    assert finished == [event.event_id]
    assert await queue_depth(connection, QUEUE) == 0


async def test_competing_consumers_share_a_queue_without_double_handling(
    connection: AbstractRobustConnection,
) -> None:
    handled: dict[str, list[uuid.UUID]] = {"a": [], "b": []}
    both_busy = asyncio.Event()
    gate = asyncio.Event()

    def handler_for(name: str):  # type: ignore[no-untyped-def]
        async def handle(envelope: EventEnvelope, info: DeliveryInfo) -> None:
            handled[name].append(envelope.event_id)
            if handled["a"] and handled["b"]:
                both_busy.set()
            await gate.wait()

        return handle

    workers = [consumer(connection, handler_for(n), prefetch=1, concurrency=1) for n in "ab"]
    for worker in workers:
        await worker.start()
    events = [payment_failed() for _ in range(30)]
    publisher = Publisher(connection)
    for event in events:
        await publisher.publish("payments", event)
    # prefetch=1: neither can take the second message while holding the first, so both get work.
    await asyncio.wait_for(both_busy.wait(), 20)
    gate.set()

    async def all_handled() -> bool:
        return len(handled["a"]) + len(handled["b"]) == 30

    await eventually(all_handled, what="thirty messages handled")
    for worker in workers:
        await worker.stop()
    assert sorted(handled["a"] + handled["b"]) == sorted(e.event_id for e in events)
