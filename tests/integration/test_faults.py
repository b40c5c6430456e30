"""Section 4 of issue 6: the system under faults, end to end through the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from shop_devstack.accounts import Account, admin_token, new_user
from shop_devstack.client import TERMINAL_ORDER_STATES, Item, ShopClient
from shop_devstack.running import RunningSystem

pytestmark = [pytest.mark.infra, pytest.mark.launcher, pytest.mark.timeout(300)]
ITEM = Item("BOOK-42", 1, Decimal("12.50"))
DLQS = (
    "payment.order-events.dlq",
    "order.payment-results.dlq",
    "order.user-changes.dlq",
    "gateway.user-changes.dlq",
)


@pytest_asyncio.fixture
async def client(controllable: RunningSystem) -> AsyncIterator[ShopClient]:
    shop = ShopClient(controllable.gateway_url, timeout=30)
    yield shop
    await shop.close()


async def shoppers(
    client: ShopClient, system: RunningSystem, count: int
) -> list[tuple[Account, str]]:
    admin = await admin_token(client, system.run_dir)
    accounts = await asyncio.gather(
        *(new_user(client, admin, f"Fault Shopper {i}") for i in range(count))
    )
    tokens = await asyncio.gather(*(client.token(a.email, a.password) for a in accounts))
    return list(zip(accounts, tokens, strict=True))


async def wait_terminal(
    client: ShopClient, token: str, order_id: str, within: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        order = await client.get_order(token, order_id)
        if order["status"] in TERMINAL_ORDER_STATES or time.monotonic() > deadline:
            return order
        await asyncio.sleep(0.5)


async def dlq_depths(system: RunningSystem) -> dict[str, int]:
    connection = await aio_pika.connect(str(system.state["amqp_url"]))
    try:
        channel = await connection.channel()
        depths = {}
        for name in DLQS:
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = queue.declaration_result.message_count or 0
        return depths
    finally:
        await connection.close()


async def test_user_service_down_without_a_cached_user_gives_503_then_recovers(
    client: ShopClient, controllable: RunningSystem
) -> None:
    [(_, token)] = await shoppers(client, controllable, 1)  # never looked up by the order service
    await asyncio.gather(controllable.ctl("stop", "user-1"), controllable.ctl("stop", "user-2"))
    try:
        response = await client.place_order(token, [ITEM])
        assert response.status_code == 503, response.text
        assert response.headers.get("retry-after")
        assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        await asyncio.gather(
            controllable.ctl("start", "user-1"), controllable.ctl("start", "user-2")
        )
    deadline = time.monotonic() + 30
    while (response := await client.place_order(token, [ITEM])).status_code != 201:
        assert response.status_code in (503,), response.text  # recovering, never a 500
        assert time.monotonic() < deadline, (
            "orders did not work again after the user service returned"
        )
        await asyncio.sleep(0.5)


async def test_a_thousand_orders_while_payment_is_killed_and_restarted(
    client: ShopClient, controllable: RunningSystem
) -> None:
    users = await shoppers(client, controllable, 50)
    before = await dlq_depths(controllable)

    async def place(account_token: tuple[Account, str]) -> list[tuple[str, str]]:
        _, token = account_token
        placed = []
        for _ in range(20):
            response = await client.place_order(token, [ITEM])
            assert response.status_code == 201, response.text
            placed.append((token, response.json()["id"]))
        return placed

    placing = asyncio.gather(*(place(u) for u in users))
    await asyncio.sleep(2)
    await controllable.ctl("kill", "payment")  # SIGKILL mid-stream; the launcher restarts it
    batches = await placing
    orders = [o for batch in batches for o in batch]
    assert len(orders) == 1000
    finals = await asyncio.gather(*(wait_terminal(client, t, oid, 180) for t, oid in orders))
    statuses = {o["status"] for o in finals}
    assert statuses <= TERMINAL_ORDER_STATES, f"orders left non-terminal: {statuses}"
    paid = [(t, o["id"]) for (t, _), o in zip(orders, finals, strict=True) if o["status"] == "PAID"]
    charges = await asyncio.gather(*(client.payments_for(t, oid) for t, oid in paid))
    assert all(len(c) == 1 for c in charges), "an order was charged more than once"
    assert await dlq_depths(controllable) == before


async def test_redis_unreachable_degrades_without_500_and_recovers(
    client: ShopClient, controllable: RunningSystem
) -> None:
    [(account, token)] = await shoppers(client, controllable, 1)
    await controllable.ctl("cut", "redis")
    try:
        statuses = [(await client.get_user(token, account.id)).status_code for _ in range(10)]
        assert 500 not in statuses and all(s in (200, 429, 503) for s in statuses), statuses
    finally:
        await controllable.ctl("restore", "redis")
    deadline = time.monotonic() + 20
    while (await client.get_user(token, account.id)).status_code != 200:
        assert time.monotonic() < deadline, "no recovery after Redis returned"
        await asyncio.sleep(0.5)


async def test_rabbitmq_connections_dropped_during_traffic_lose_nothing(
    client: ShopClient, controllable: RunningSystem
) -> None:
    users = await shoppers(client, controllable, 10)
    placed: list[tuple[str, str]] = []

    async def place(token: str, count: int) -> None:
        for _ in range(count):
            response = await client.place_order(token, [ITEM])
            assert response.status_code == 201, response.text
            placed.append((token, response.json()["id"]))

    await asyncio.gather(*(place(t, 5) for _, t in users))
    await controllable.ctl("cut", "rabbitmq")
    await asyncio.gather(*(place(t, 5) for _, t in users))  # accepted: the outbox holds the events
    await asyncio.sleep(1)
    await controllable.ctl("restore", "rabbitmq")
    finals = await asyncio.gather(*(wait_terminal(client, t, oid, 120) for t, oid in placed))
    assert [o["status"] for o in finals] == ["PAID"] * len(placed)
