"""BatchConsumer and acks in runs, against RabbitMQ: runs of messages reach one handler call,
a failed batch goes one at a time with the usual tiers and DLQ, and nothing stays unacked."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    Consumer,
    DeliveryInfo,
    EventEnvelope,
    OrderCancelled,
    OrderStatusChanged,
    PermanentError,
    Publisher,
    new_event,
)
from shop_common.messaging.batch import BatchConsumer, BatchItem
from shop_testing.wait import eventually

from .conftest import FAST_TOPOLOGY, get_one, queue_depth

pytestmark = pytest.mark.infra

QUEUE = "catalog.order-events"  # takes order.paid (batched here) and order.cancelled (not)


def paid() -> EventEnvelope:
    return new_event("order.paid", OrderStatusChanged(order_id=uuid.uuid4(), status="PAID"))


def cancelled() -> EventEnvelope:
    return new_event(
        "order.cancelled", OrderCancelled(order_id=uuid.uuid4(), user_id=7, refund_required=False)
    )


class Recorder:
    """The handlers: what each path saw."""

    def __init__(self, *, fail_batches: bool = False, leave: int = 0) -> None:
        self.batches: list[list[EventEnvelope]] = []
        self.single: list[EventEnvelope] = []
        self.fail_batches = fail_batches
        self.leave = leave

    async def batch(self, items: Sequence[BatchItem]) -> list[BatchItem]:
        self.batches.append([item.envelope for item in items])
        if self.fail_batches:
            raise RuntimeError("database down")
        return list(items[: self.leave])

    async def one(self, envelope: EventEnvelope, info: DeliveryInfo) -> None:
        self.single.append(envelope)

    @property
    def batched(self) -> int:
        return sum(len(b) for b in self.batches)


def batch_consumer(conn: AbstractRobustConnection, recorder: Recorder, **kwargs) -> BatchConsumer:  # type: ignore[no-untyped-def]
    return BatchConsumer(
        conn,
        QUEUE,
        recorder.one,
        batch_handler=recorder.batch,
        batch_types=frozenset({"order.paid"}),
        topology=FAST_TOPOLOGY,
        **kwargs,
    )


async def publish_all(conn: AbstractRobustConnection, events: list[EventEnvelope]) -> None:
    publisher = Publisher(conn)
    await asyncio.gather(*(publisher.publish("orders", e) for e in events))
    await publisher.close()


async def test_a_run_of_messages_reaches_the_handler_in_batches_and_all_are_acked(
    connection: AbstractRobustConnection,
) -> None:
    recorder = Recorder()
    events = [paid() for _ in range(40)]
    await publish_all(connection, events)  # queued before the consumer starts: they pile up
    worker = batch_consumer(connection, recorder, max_batch=16, linger=0.05)
    await worker.start()

    async def all_batched() -> bool:
        return recorder.batched == 40

    await eventually(all_batched, what="40 messages through the batch handler")
    await worker.stop()
    assert recorder.single == []
    assert max(len(b) for b in recorder.batches) > 1
    assert all(len(b) <= 16 for b in recorder.batches)
    seen = [e.event_id for b in recorder.batches for e in b]
    assert sorted(seen) == sorted(e.event_id for e in events)  # each once
    assert await queue_depth(connection, QUEUE) == 0  # stop() sent every ack: none redelivered


async def test_other_event_types_take_the_one_at_a_time_path(
    connection: AbstractRobustConnection,
) -> None:
    recorder = Recorder()
    worker = batch_consumer(connection, recorder, linger=0.01)
    await worker.start()
    await publish_all(connection, [cancelled(), paid()])

    async def both() -> bool:
        return len(recorder.single) == 1 and recorder.batched == 1

    await eventually(both, what="one message down each path")
    await worker.stop()
    assert recorder.single[0].event_type == "order.cancelled"
    assert await queue_depth(connection, QUEUE) == 0


async def test_a_failed_batch_goes_one_at_a_time(connection: AbstractRobustConnection) -> None:
    recorder = Recorder(fail_batches=True)
    events = [paid() for _ in range(5)]
    await publish_all(connection, events)
    worker = batch_consumer(connection, recorder, linger=0.05)
    await worker.start()

    async def each_alone() -> bool:
        return len(recorder.single) == 5

    await eventually(each_alone, what="the failed batch's messages one by one")
    await worker.stop()
    assert sorted(e.event_id for e in recorder.single) == sorted(e.event_id for e in events)
    assert await queue_depth(connection, QUEUE) == 0


async def test_what_the_batch_leaves_goes_one_at_a_time_and_to_the_dlq_if_it_must(
    connection: AbstractRobustConnection,
) -> None:
    recorder = Recorder(leave=1)

    async def refuse(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        recorder.single.append(envelope)
        raise PermanentError("no reservation can hold these lines")

    worker = BatchConsumer(
        connection,
        QUEUE,
        refuse,
        batch_handler=recorder.batch,
        batch_types=frozenset({"order.paid"}),
        linger=0.01,
        topology=FAST_TOPOLOGY,
    )
    await worker.start()
    left = paid()
    await publish_all(connection, [left])
    parked = await get_one(connection, f"{QUEUE}.dlq")
    await worker.stop()
    assert parked.message_id == str(left.event_id)
    assert [e.event_id for e in recorder.single] == [left.event_id]


async def test_an_undecodable_message_goes_to_the_dlq(connection: AbstractRobustConnection) -> None:
    recorder = Recorder()
    worker = batch_consumer(connection, recorder, linger=0.01)
    await worker.start()
    channel = await connection.channel()
    exchange = await channel.get_exchange("orders")
    body = aio_pika.Message(b"{not json", type="order.paid", message_id="bad-1")
    await exchange.publish(body, routing_key="order.paid")
    await channel.close()
    parked = await get_one(connection, f"{QUEUE}.dlq")
    await worker.stop()
    assert parked.message_id == "bad-1"
    assert recorder.batches == [] and recorder.single == []


async def test_acks_go_in_runs_and_a_slow_message_does_not_stall_the_queue(
    connection: AbstractRobustConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames: list[bool] = []
    real_ack = aio_pika.IncomingMessage.ack

    async def counted(self: aio_pika.IncomingMessage, multiple: bool = False) -> None:
        frames.append(multiple)
        await real_ack(self, multiple=multiple)

    monkeypatch.setattr(aio_pika.IncomingMessage, "ack", counted)
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        if not handled:  # the first message waits until the rest are through
            handled.append("slow")
            await release.wait()
            return
        handled.append(envelope.event_type)

    # prefetch 8: with the first message held, the other 29 can only get through if the
    # acks behind it are sent (max_pending = 2 of them at a time).
    worker = Consumer(connection, QUEUE, handler, prefetch=8, concurrency=4, topology=FAST_TOPOLOGY)
    await worker.start()
    await publish_all(connection, [cancelled() for _ in range(30)])

    async def rest_through() -> bool:
        return len(handled) == 30

    await eventually(rest_through, what="29 messages past the slow one")
    release.set()
    await worker.stop()
    assert await queue_depth(connection, QUEUE) == 0
    assert len(frames) < 30  # fewer ack frames than messages: some went as runs
    assert any(frames)
