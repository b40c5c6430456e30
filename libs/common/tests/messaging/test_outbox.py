"""Transactional outbox and relay against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import aio_pika
import pytest
import pytest_asyncio
import structlog
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    INBOX_DDL,
    OUTBOX_DDL,
    EventEnvelope,
    OrderCreated,
    OrderItem,
    OutboxRelay,
    Publisher,
    claim_once,
    new_event,
    outbox_row,
)
from shop_testing.wait import eventually
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .conftest import get_one, queue_depth

pytestmark = pytest.mark.infra

QUEUE = "catalog.order-events"  # where order.created is routed


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh database with the outbox, the inbox and a business table."""
    eng = create_async_engine(database_url, pool_size=5)
    async with eng.begin() as conn:
        for statement in [*OUTBOX_DDL, *INBOX_DDL]:
            await conn.execute(text(statement))
        await conn.execute(text("CREATE TABLE orders (id UUID PRIMARY KEY, seq INT NOT NULL)"))
        await conn.execute(text("CREATE TABLE effects (event_id UUID NOT NULL)"))
    yield eng
    await eng.dispose()


def created(order_id: uuid.UUID, seq: int) -> EventEnvelope:
    return new_event(
        "order.created",
        OrderCreated(
            order_id=order_id,
            user_id=seq,  # the sequence number within the aggregate, checked on arrival
            items=[OrderItem(sku="SKU", quantity=1, unit_price=Decimal("1.00"))],
            total=Decimal("1.00"),
            currency="EUR",
        ),
    )


async def place_order(engine: AsyncEngine, order_id: uuid.UUID, seq: int) -> EventEnvelope:
    """The business change and its event in one transaction."""
    event = created(order_id, seq)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO orders (id, seq) VALUES (:id, :seq) ON CONFLICT (id) DO NOTHING"),
            {"id": order_id, "seq": seq},
        )
        await outbox_row(event, exchange="orders", aggregate_id=str(order_id)).insert(conn)
    return event


async def unsent(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
            ).scalar_one()
        )


class StallingPublisher(Publisher):
    """Stands still before (or after) the broker's confirm, so the test can kill the relay there."""

    def __init__(self, connection: AbstractRobustConnection, *, after_publish: bool) -> None:
        super().__init__(connection)
        self.after_publish = after_publish
        self.reached = asyncio.Event()

    async def publish_message(
        self, exchange: str, routing_key: str, message: aio_pika.Message
    ) -> None:
        if self.after_publish:
            await super().publish_message(exchange, routing_key, message)
        self.reached.set()
        await asyncio.Event().wait()


async def test_the_event_row_commits_or_rolls_back_with_the_business_change(
    engine: AsyncEngine,
) -> None:
    order_id = uuid.uuid4()

    async def failing_change() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO orders VALUES (:id, 1)"), {"id": order_id})
            await outbox_row(created(order_id, 1), exchange="orders", aggregate_id="a").insert(conn)
            raise RuntimeError("business rule failed after the insert")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert await unsent(engine) == 0
    structlog.contextvars.bind_contextvars(request_id="req-7")
    try:
        event = await place_order(engine, order_id, 1)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM outbox"))).one()
    assert row.event_id == event.event_id
    assert (row.exchange, row.routing_key, row.aggregate_id) == (
        "orders",
        "order.created",
        str(order_id),
    )
    assert row.headers == {"x-request-id": "req-7"}
    assert EventEnvelope.model_validate(row.envelope) == event


async def test_relay_is_woken_by_notify_and_marks_sent_after_the_confirm(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    # A poll interval longer than the test's deadline: only the NOTIFY can wake the relay.
    relay = OutboxRelay(engine, Publisher(connection), poll_interval=120)
    await relay.start()

    async def listening() -> bool:
        return relay._listener is not None

    await eventually(listening, what="LISTEN")
    event = await place_order(engine, uuid.uuid4(), 1)
    message = await get_one(connection, QUEUE)
    assert message.message_id == str(event.event_id)

    async def marked() -> bool:
        return await unsent(engine) == 0

    await eventually(marked, what="row marked sent")
    await relay.stop()


async def test_polling_relays_rows_when_no_notify_arrives(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE outbox DISABLE TRIGGER outbox_notify"))
    relay = OutboxRelay(engine, Publisher(connection), poll_interval=0.1)
    await relay.start()
    event = await place_order(engine, uuid.uuid4(), 1)
    message = await get_one(connection, QUEUE)
    assert message.message_id == str(event.event_id)
    await relay.stop()


async def test_two_relays_publish_each_row_once_in_per_aggregate_order(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    aggregates = [uuid.uuid4() for _ in range(8)]
    for seq in range(1, 26):
        for order_id in aggregates:
            await place_order(engine, order_id, seq)
    publisher = Publisher(connection)
    relays = [OutboxRelay(engine, publisher, batch_size=7, poll_interval=0.05) for _ in range(2)]
    for relay in relays:
        await relay.start()

    async def all_sent() -> bool:
        return await queue_depth(connection, QUEUE) == 200

    await eventually(all_sent, timeout=40, what="200 messages")
    for relay in relays:
        await relay.stop()
    channel = await connection.channel()
    queue = await channel.declare_queue(QUEUE, passive=True)
    seen: dict[str, list[int]] = defaultdict(list)
    ids: set[str] = set()
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        envelope = EventEnvelope.from_json(message.body)
        seen[envelope.payload["order_id"]].append(envelope.payload["user_id"])
        ids.add(str(envelope.event_id))
    assert len(ids) == 200
    assert all(seqs == list(range(1, 26)) for seqs in seen.values())
    assert await unsent(engine) == 0


async def test_relay_killed_between_commit_and_publish_loses_nothing(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    event = await place_order(engine, uuid.uuid4(), 1)
    stalling = StallingPublisher(connection, after_publish=False)
    doomed = asyncio.create_task(OutboxRelay(engine, stalling).relay_once())
    await asyncio.wait_for(stalling.reached.wait(), 20)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await queue_depth(connection, QUEUE) == 0
    assert await unsent(engine) == 1
    assert await OutboxRelay(engine, Publisher(connection)).relay_once() == 1
    message = await get_one(connection, QUEUE)
    assert message.message_id == str(event.event_id)


async def test_relay_killed_between_publish_and_mark_duplicates_and_the_inbox_absorbs_it(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    event = await place_order(engine, uuid.uuid4(), 1)
    stalling = StallingPublisher(connection, after_publish=True)
    doomed = asyncio.create_task(OutboxRelay(engine, stalling).relay_once())
    await asyncio.wait_for(stalling.reached.wait(), 20)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await unsent(engine) == 1  # published but never marked: the claim rolled back
    assert await OutboxRelay(engine, Publisher(connection)).relay_once() == 1
    assert await queue_depth(connection, QUEUE) == 2  # the duplicate
    for _ in range(2):
        message = await get_one(connection, QUEUE)
        received = EventEnvelope.from_json(message.body)
        async with engine.begin() as conn:
            if await claim_once(conn, received.event_id, "payment"):
                await conn.execute(
                    text("INSERT INTO effects VALUES (:e)"), {"e": received.event_id}
                )
    async with engine.connect() as conn:
        effects = (await conn.execute(text("SELECT event_id FROM effects"))).scalars().all()
    assert effects == [event.event_id]


async def test_unroutable_row_is_kept_with_its_error_and_holds_back_its_aggregate_only(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    stuck, other = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await outbox_row(
            created(stuck, 1), exchange="orders", aggregate_id="stuck", routing_key="order.nowhere"
        ).insert(conn)
        await outbox_row(created(stuck, 2), exchange="orders", aggregate_id="stuck").insert(conn)
        await outbox_row(created(other, 1), exchange="orders", aggregate_id="other").insert(conn)
    relay = OutboxRelay(engine, Publisher(connection))
    assert await relay.relay_once() == 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT aggregate_id, sent_at, attempts, last_error FROM outbox ORDER BY id")
            )
        ).all()
    assert (
        rows[0].sent_at is None and rows[0].attempts == 1 and "order.nowhere" in rows[0].last_error
    )
    assert rows[1].sent_at is None and rows[1].attempts == 0  # held back: order within "stuck"
    assert rows[2].sent_at is not None
    assert await relay.measure_lag() >= (2, 0.0)


async def test_sent_rows_are_pruned_after_the_retention(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    for seq in range(3):
        await place_order(engine, uuid.uuid4(), seq)
    relay = OutboxRelay(engine, Publisher(connection), retention=timedelta(hours=1))
    assert await relay.relay_once() == 3
    await place_order(engine, uuid.uuid4(), 9)  # unsent: never pruned
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL ORDER BY id LIMIT 2)"
            )
        )
    assert await relay.prune() == 2
    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    assert left == 2


async def test_a_relay_never_overtakes_an_older_row_another_relay_holds(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    """Deterministic form of the two-relay test: the claim keeps only unbroken prefixes."""
    held, free, locked = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for seq in (1, 2, 3):
        for order_id in (held, free, locked):
            await place_order(engine, order_id, seq)
    relay = OutboxRelay(engine, Publisher(connection), batch_size=50)
    async with engine.connect() as other, other.begin():
        # Another relay holds `held`'s oldest row (its claim) and `locked`'s aggregate lock.
        await other.execute(
            text(
                "SELECT id FROM outbox WHERE id = (SELECT min(id) FROM outbox"
                " WHERE aggregate_id = :a) FOR UPDATE"
            ),
            {"a": str(held)},
        )
        await other.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:a, 7))"), {"a": str(locked)}
        )
        assert await relay.relay_once() == 3  # `free`'s three rows only
    channel = await connection.channel()
    queue = await channel.declare_queue(QUEUE, passive=True)

    async def drained() -> dict[str, list[int]]:
        seen: dict[str, list[int]] = defaultdict(list)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            envelope = EventEnvelope.from_json(message.body)
            seen[envelope.payload["order_id"]].append(envelope.payload["user_id"])
        return seen

    assert await drained() == {str(free): [1, 2, 3]}
    assert await unsent(engine) == 6
    # Released: the rest goes, each aggregate in its own order.
    while await relay.relay_once():
        pass
    assert await drained() == {str(held): [1, 2, 3], str(locked): [1, 2, 3]}
    assert await unsent(engine) == 0
