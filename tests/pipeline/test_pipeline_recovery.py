"""Issue 4 §6, the pipeline under faults: a stopped consumer, the saga timeout, redeliveries,
poison messages and replays, dropped broker connections, and a crash between the order's commit
and its publish. Each test has its own processes, databases and vhost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging.dlq import list_dead_letters, replay
from shop_common.messaging.outcomes import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    FAILED_QUEUE_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
)
from shop_devstack.pipeline import ORDER, PAYMENT, Pipeline
from shop_testing.wait import eventually

from .conftest import (
    DLQS,
    MAX_ATTEMPTS,
    MakePipeline,
    Shop,
    counter,
    dlq_depths,
    order_states,
    outbox_rows,
    payments_of,
    publish_raw,
    queue_depth,
    shop_for,
)

pytestmark = [pytest.mark.infra, pytest.mark.timeout(180)]

WORK_QUEUE = "payment.order-events"
NO_DEAD_LETTERS = dict.fromkeys(DLQS, 0)


async def place_many(shops: list[Shop], count: int, in_flight: int = 20) -> list[str]:
    """count orders spread over the shoppers, in_flight at a time; their ids."""
    slots = asyncio.Semaphore(in_flight)

    async def one(n: int) -> str:
        async with slots:
            return str((await shops[n % len(shops)].place_ok())["id"])

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def all_published(
    pipeline: Pipeline, routing_key: str = "order.created", database: str = "orders"
) -> bool:
    """True when a service's relay (the order service's unless told) has published every row of
    routing_key."""
    rows = await outbox_rows(pipeline, routing_key, database)
    return bool(rows) and all(row["sent_at"] is not None for row in rows)


async def assert_charged_once_each(pipeline: Pipeline, order_ids: list[str]) -> None:
    rows = await payments_of(pipeline)
    charges = [r["order_id"] for r in rows if r["kind"] == "charge" and r["status"] == "succeeded"]
    assert sorted(charges) == sorted(order_ids), "every order charged, none twice, nothing else"


async def test_orders_placed_while_payment_is_stopped_are_paid_once_it_returns(
    pipeline: Pipeline, http: httpx.AsyncClient, broker: AbstractRobustConnection
) -> None:
    shops = [await shop_for(pipeline, http) for _ in range(4)]
    await pipeline.stop(PAYMENT)

    order_ids = await place_many(shops, 200)
    await eventually(lambda: all_published(pipeline), what="every order.created published")

    async def all_reserved_and_waiting() -> bool:  # the catalog held the stock of each
        return await queue_depth(broker, WORK_QUEUE) == 200

    await eventually(all_reserved_and_waiting, what="200 stock.reserved for the payment service")
    assert await order_states(pipeline) == {"PENDING": 200}

    await pipeline.start_process(PAYMENT)

    async def all_paid() -> bool:
        return await order_states(pipeline) == {"PAID": 200}

    await eventually(all_paid, timeout=90, what="all 200 orders PAID")
    await assert_charged_once_each(pipeline, order_ids)
    assert await dlq_depths(broker) == NO_DEAD_LETTERS


async def test_the_saga_timeout_fails_the_order_and_compensates_a_late_charge(
    make_pipeline: MakePipeline, http: httpx.AsyncClient
) -> None:
    pipeline = await make_pipeline(
        order_env={"SAGA_TIMEOUT_SECONDS": "1.5", "SAGA_SWEEP_INTERVAL_SECONDS": "0.2"}
    )
    shop = await shop_for(pipeline, http)
    await pipeline.stop(PAYMENT)  # no payment result will come in time
    order = await shop.place_ok()

    await shop.wait_status([order["id"]], "PAYMENT_FAILED", within=20)
    assert (await shop.get(order["id"])).json()["failure_reason"] == "payment timed out"

    # The payment service comes back and finds stock.reserved (and the compensation) queued:
    # whatever it does first, the customer must not end up charged for a failed order.
    await pipeline.start_process(PAYMENT)

    async def settled() -> bool:
        rows = await payments_of(pipeline, [order["id"]])
        charged = any(r["kind"] == "charge" and r["status"] == "succeeded" for r in rows)
        refunded = any(r["kind"] == "refund" and r["status"] == "succeeded" for r in rows)
        handled = any(r["kind"] == "charge" for r in rows)
        return handled and (refunded or not charged)

    await eventually(settled, timeout=20, what="the late charge to be refunded (or never made)")
    assert await shop.status(order["id"]) == "PAYMENT_FAILED"


async def test_a_message_delivered_three_times_and_then_replayed_charges_once(
    pipeline: Pipeline, http: httpx.AsyncClient, broker: AbstractRobustConnection
) -> None:
    shop = await shop_for(pipeline, http)
    await pipeline.stop(PAYMENT)
    order = await shop.place_ok()
    # The payment service is charged by stock.reserved, which the catalog publishes.
    await eventually(
        lambda: all_published(pipeline, "stock.reserved", "catalog"), what="stock.reserved sent"
    )
    (row,) = await outbox_rows(pipeline, "stock.reserved", "catalog")
    body = row["envelope"].encode()
    event_id = json.loads(body)["event_id"]
    for _ in range(2):  # the relay's publish plus two duplicates, as a crash before mark gives
        await publish_raw(broker, "catalog", "stock.reserved", body, message_id=event_id)
    assert await queue_depth(broker, WORK_QUEUE) == 3

    await pipeline.start_process(PAYMENT)  # the three copies meet 16 concurrent handlers
    await shop.wait_status([order["id"]], "PAID")
    await assert_charged_once_each(pipeline, [order["id"]])

    # The same event dead-lettered (as after an outage) and replayed: acked, no second effect.
    acked = (WORK_QUEUE, "ack")
    metric = "shop_messages_consumed_total"
    payment_url = pipeline.url(PAYMENT)

    async def acks() -> float:
        return await counter(http, payment_url, metric, queue=acked[0], outcome=acked[1])

    async def three_acked() -> bool:
        return await acks() >= 3

    await eventually(three_acked, what="the three deliveries acked")
    before = await acks()
    dead_letter_headers = {
        ATTEMPTS_HEADER: MAX_ATTEMPTS,
        ERROR_HEADER: "ProviderUnavailableError: payment provider is down",
        ORIGINAL_EXCHANGE_HEADER: "catalog",
        ORIGINAL_ROUTING_KEY_HEADER: "stock.reserved",
        FAILED_QUEUE_HEADER: WORK_QUEUE,
    }
    await publish_raw(
        broker, "", f"{WORK_QUEUE}.dlq", body, message_id=event_id, headers=dead_letter_headers
    )
    assert await replay(broker, WORK_QUEUE) == [event_id]

    async def replay_acked() -> bool:
        return await acks() == before + 1

    await eventually(replay_acked, what="the replayed message handled and acked")
    await assert_charged_once_each(pipeline, [order["id"]])
    assert await shop.status(order["id"]) == "PAID"
    assert await dlq_depths(broker) == NO_DEAD_LETTERS


async def test_a_message_failing_every_attempt_is_dead_lettered_then_replayed_after_the_fix(
    make_pipeline: MakePipeline, http: httpx.AsyncClient, broker: AbstractRobustConnection
) -> None:
    pipeline = await make_pipeline(
        payment_env={"PROVIDER_DOWN": "true", "BREAKER_RECOVERY_SECONDS": "0.2"}
    )
    shop = await shop_for(pipeline, http)
    order = await shop.place_ok()

    async def dead_lettered() -> bool:
        return await queue_depth(broker, f"{WORK_QUEUE}.dlq") == 1

    await eventually(dead_lettered, what="the stock.reserved in the DLQ after the last attempt")
    (letter,) = await list_dead_letters(broker, WORK_QUEUE)
    assert letter.attempts == MAX_ATTEMPTS
    assert letter.original_exchange == "catalog"
    assert letter.original_routing_key == "stock.reserved"
    assert letter.failed_queue == WORK_QUEUE
    assert letter.error is not None
    assert "down" in letter.error or "open" in letter.error
    assert json.loads(letter.body)["payload"]["order_id"] == order["id"]
    assert await shop.status(order["id"]) == "PENDING"
    assert await payments_of(pipeline) == []

    await shop.provider(pipeline.token(0, ("admin",)), down=False)  # the fix, at run time
    assert await replay(broker, WORK_QUEUE) == [letter.message_id]

    await shop.wait_status([order["id"]], "PAID")
    await assert_charged_once_each(pipeline, [order["id"]])
    assert await dlq_depths(broker) == NO_DEAD_LETTERS


async def test_dropped_broker_connections_lose_no_order(
    pipeline: Pipeline,
    http: httpx.AsyncClient,
    broker: AbstractRobustConnection,
    drop_connections: Callable[[], int],
) -> None:
    shops = [await shop_for(pipeline, http) for _ in range(3)]
    placed: list[str] = []

    async def stream() -> None:
        for _ in range(12):
            placed.extend(await place_many(shops, 5, in_flight=5))

    streaming = asyncio.create_task(stream())
    for mark in (20, 40):  # twice: recovering must itself be recoverable

        async def reached(mark: int = mark) -> bool:
            return len(placed) >= mark

        await eventually(reached, what=f"{mark} orders placed")
        closed = await asyncio.to_thread(drop_connections)
        assert closed >= 2  # at least the order and payment services' connections
    await streaming

    async def all_paid() -> bool:
        return await order_states(pipeline) == {"PAID": 60}

    await eventually(all_paid, timeout=60, what="all 60 orders PAID after the drops")
    await assert_charged_once_each(pipeline, placed)
    assert await dlq_depths(broker) == NO_DEAD_LETTERS


async def test_an_order_committed_but_not_published_when_the_process_dies_is_still_paid(
    make_pipeline: MakePipeline, http: httpx.AsyncClient
) -> None:
    pipeline = await make_pipeline(proxy_order_broker=True)
    shop = await shop_for(pipeline, http)
    proxy = pipeline.broker_proxy
    assert proxy is not None
    proxy.cut()  # the relay can no longer publish; creating orders still commits

    orders = [await shop.place_ok() for _ in range(5)]
    rows = await outbox_rows(pipeline, "order.created")
    assert len(rows) == 5
    assert all(row["sent_at"] is None for row in rows)  # committed, never published

    await pipeline.kill(ORDER)  # SIGKILL: no drain, no goodbye
    proxy.restore()
    await pipeline.start_process(ORDER)

    await shop.wait_status([o["id"] for o in orders], "PAID")
    await assert_charged_once_each(pipeline, [o["id"] for o in orders])
