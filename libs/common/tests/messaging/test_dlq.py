"""DLQ tools: list leaves messages in place; replay sends the chosen ones back to their exchange."""

from __future__ import annotations

import json
import uuid

import pytest
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    Consumer,
    DeliveryInfo,
    EventEnvelope,
    PaymentFailed,
    Publisher,
    new_event,
)
from shop_common.messaging.dlq import list_dead_letters, main, replay
from shop_testing.wait import eventually

from .conftest import FAST_TOPOLOGY, get_one, queue_depth

pytestmark = pytest.mark.infra

QUEUE = "order.payment-results"


def payment_failed() -> EventEnvelope:
    return new_event("payment.failed", PaymentFailed(order_id=uuid.uuid4(), reason="card"))


async def poison_into_dlq(conn: AbstractRobustConnection, count: int) -> list[EventEnvelope]:
    """Run a broken handler until count events sit in the DLQ after their attempts."""

    async def broken(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        raise ValueError("handler bug #12")

    worker = Consumer(conn, QUEUE, broken, max_attempts=2, topology=FAST_TOPOLOGY)
    await worker.start()
    events = [payment_failed() for _ in range(count)]
    publisher = Publisher(conn)
    for event in events:
        await publisher.publish("payments", event)

    async def all_dead() -> bool:
        return await queue_depth(conn, f"{QUEUE}.dlq") == count

    await eventually(all_dead, what="poison messages in the DLQ")
    await worker.stop()
    return events


async def test_list_shows_history_and_leaves_messages_in_place(
    connection: AbstractRobustConnection,
) -> None:
    events = await poison_into_dlq(connection, 2)
    letters = await list_dead_letters(connection, QUEUE)
    assert [letter.message_id for letter in letters] == [str(e.event_id) for e in events]
    first = letters[0]
    assert (first.original_exchange, first.original_routing_key) == ("payments", "payment.failed")
    assert first.attempts == 2
    assert first.error == "ValueError: handler bug #12"
    assert first.failed_queue == QUEUE
    assert await queue_depth(connection, f"{QUEUE}.dlq") == 2


async def test_replay_of_one_id_after_the_fix_is_processed_and_has_no_second_effect(
    connection: AbstractRobustConnection,
) -> None:
    chosen, untouched = await poison_into_dlq(connection, 2)
    effects: list[uuid.UUID] = []
    calls = 0
    processed: set[uuid.UUID] = set()  # stands in for the inbox table (tested in test_inbox)

    async def fixed(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        nonlocal calls
        calls += 1
        if envelope.event_id in processed:
            return
        processed.add(envelope.event_id)
        effects.append(envelope.event_id)

    worker = Consumer(connection, QUEUE, fixed, topology=FAST_TOPOLOGY)
    await worker.start()
    assert await replay(connection, QUEUE, ids={str(chosen.event_id)}) == [str(chosen.event_id)]

    async def handled() -> bool:
        return effects == [chosen.event_id]

    await eventually(handled, what="the replayed message handled")
    remaining = await list_dead_letters(connection, QUEUE)
    assert [r.message_id for r in remaining] == [str(untouched.event_id)]
    # A second copy of the same event (replayed twice) has no second effect.
    await Publisher(connection).publish("payments", chosen)

    async def drained() -> bool:
        return calls == 2

    await eventually(drained, what="the duplicate consumed")
    await worker.stop()
    assert effects == [chosen.event_id]


async def test_broker_dead_lettered_message_replays_to_its_original_exchange(
    connection: AbstractRobustConnection,
) -> None:
    event = payment_failed()
    await Publisher(connection).publish("payments", event, expiration=0.01)

    async def expired() -> bool:
        return await queue_depth(connection, f"{QUEUE}.dlq") == 1

    await eventually(expired, what="expired message dead-lettered by the broker")
    [letter] = await list_dead_letters(connection, QUEUE)
    assert (letter.original_exchange, letter.original_routing_key) == ("payments", "payment.failed")
    assert letter.error is not None and "expired" in letter.error
    assert await replay(connection, QUEUE) == [str(event.event_id)]
    message = await get_one(connection, QUEUE)
    assert message.message_id == str(event.event_id)
    assert message.headers["x-replayed"] == 1


async def test_cli_lists_and_replays(
    connection: AbstractRobustConnection,
    amqp_vhost_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    [event] = await poison_into_dlq(connection, 1)
    capsys.readouterr()  # drop the consumer's log lines
    assert await main(["--url", amqp_vhost_url, "list", QUEUE]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [row["message_id"] for row in listed] == [str(event.event_id)]
    assert await main(["--url", amqp_vhost_url, "replay", f"{QUEUE}.dlq"]) == 2
    assert await main(["--url", amqp_vhost_url, "list", "no.such-queue"]) == 1
    assert "no such queue: no.such-queue.dlq" in capsys.readouterr().err
    assert await main(["--url", amqp_vhost_url, "replay", QUEUE, "--all", "--to-queue"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {
        "replayed": [str(event.event_id)]
    }
    message = await get_one(connection, QUEUE)
    assert message.message_id == str(event.event_id)
