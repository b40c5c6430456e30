"""Inbox: one effect per event and consumer, in the same transaction as the effect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import (
    INBOX_DDL,
    Consumer,
    DeliveryInfo,
    EventEnvelope,
    PaymentFailed,
    Publisher,
    claim_once,
    new_event,
)
from shop_testing.wait import eventually
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .conftest import FAST_TOPOLOGY

pytestmark = pytest.mark.infra


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url, pool_size=5)
    async with eng.begin() as conn:
        for statement in INBOX_DDL:
            await conn.execute(text(statement))
        await conn.execute(text("CREATE TABLE charges (event_id UUID NOT NULL)"))
    yield eng
    await eng.dispose()


async def charges(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM charges"))).scalar_one())


async def test_claim_is_once_per_consumer_and_rolls_back_with_the_effect(
    engine: AsyncEngine,
) -> None:
    event_id = uuid.uuid4()

    async def failing_effect() -> None:
        async with engine.begin() as conn:
            assert await claim_once(conn, event_id, "payment")
            raise RuntimeError("effect failed")

    with pytest.raises(RuntimeError):
        await failing_effect()
    async with engine.begin() as conn:  # the failed attempt left no claim behind
        assert await claim_once(conn, event_id, "payment")
    async with engine.begin() as conn:
        assert not await claim_once(conn, event_id, "payment")
        assert await claim_once(conn, event_id, "order")  # another consumer has its own claim


async def test_concurrent_duplicates_produce_one_effect(engine: AsyncEngine) -> None:
    event_id = uuid.uuid4()
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def handle(hold: bool) -> bool:
        async with engine.begin() as conn:
            claimed = await claim_once(conn, event_id, "payment")
            if claimed:
                await conn.execute(text("INSERT INTO charges VALUES (:e)"), {"e": event_id})
            if hold:
                first_claimed.set()
                await release.wait()
            return claimed

    holder = asyncio.create_task(handle(hold=True))
    await first_claimed.wait()
    duplicate = asyncio.create_task(handle(hold=False))  # blocks on the key until the first commits
    await asyncio.sleep(0)
    release.set()
    assert sorted([await holder, await duplicate]) == [False, True]
    assert await charges(engine) == 1


async def test_the_same_message_delivered_three_times_charges_once(
    engine: AsyncEngine, connection: AbstractRobustConnection
) -> None:
    handled = 0

    async def charge(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        nonlocal handled
        async with engine.begin() as conn:
            if await claim_once(conn, envelope.event_id, "payment"):
                await conn.execute(
                    text("INSERT INTO charges VALUES (:e)"), {"e": envelope.event_id}
                )
        handled += 1

    worker = Consumer(connection, "order.payment-results", charge, topology=FAST_TOPOLOGY)
    await worker.start()
    event = new_event("payment.failed", PaymentFailed(order_id=uuid.uuid4(), reason="x"))
    publisher = Publisher(connection)
    for _ in range(3):
        await publisher.publish("payments", event)

    async def drained() -> bool:
        return handled == 3

    await eventually(drained, what="three deliveries handled")
    await worker.stop()
    assert await charges(engine) == 1
