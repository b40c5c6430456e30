"""The system under faults, end to end through the gateway.

They run against the launcher's system (`make up`: it stops, kills and restarts processes and
cuts Redis and RabbitMQ with its fault proxies) and against a compose stack named by
SHOP_E2E_COMPOSE_PROJECT (tests/compose: `docker compose stop/start`, a SIGKILL that Docker's
restart policy answers, TCP resets in the dependency's network namespace); see
RunningSystem.kill_instance / cut. Any other external system deselects them (`launcher`).

Requests go through the gateway only. Bulk invariants over hundreds of orders (every order
terminal, one charge per paid order) are read from the services' own databases: polling 1,000
orders through the gateway would only measure its rate limiter.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio
import yaml
from order_service.settings import Settings as OrderSettings
from shop_devstack.accounts import Account, admin_token, login, new_user
from shop_devstack.client import TERMINAL_ORDER_STATES, Item, ShopClient
from shop_devstack.layout import REPO_ROOT
from shop_devstack.running import RunningSystem
from shop_testing.wait import eventually

COMPOSE = bool(os.environ.get("SHOP_E2E_COMPOSE_PROJECT"))
pytestmark = [pytest.mark.infra, pytest.mark.timeout(900)]
if not COMPOSE:
    pytestmark.append(pytest.mark.launcher)
ITEM = Item("BOOK-001", 1)
DLQS = (
    "catalog.order-events.dlq",
    "order.catalog-changes.dlq",
    "payment.order-events.dlq",
    "order.payment-results.dlq",
    "order.user-changes.dlq",
    "gateway.user-changes.dlq",
    "gateway.catalog-changes.dlq",
)
SIGN_UP_PATIENCE = 300.0  # seconds a sign-up is retried through 503/504 before the setup fails
ROUTES_FILE = REPO_ROOT / "gateway" / "src" / "gateway" / "routes.yaml"


@pytest_asyncio.fixture
async def client(controllable: RunningSystem) -> AsyncIterator[ShopClient]:
    shop = ShopClient(controllable.gateway_url, timeout=30)
    yield shop
    await shop.close()


async def shoppers(
    client: ShopClient, system: RunningSystem, count: int
) -> list[tuple[Account, str]]:
    admin = await admin_token(client, system.run_dir)
    # Password hashing is deliberately slow (argon2id): two sign-ups at a time, as a sign-up page
    # would see them. On a starved machine a sign-up can outlast the gateway's user-call deadline
    # and trip its breaker (503 + Retry-After): the setup then waits it out, patiently, since the
    # scenario under test is the fault that follows, not sign-up under overload.
    limit = asyncio.Semaphore(2)

    async def shopper(i: int) -> tuple[Account, str]:
        async with limit:
            account = await new_user(client, admin, f"Fault Shopper {i}", patience=SIGN_UP_PATIENCE)
            token = await login(client, account.email, account.password, SIGN_UP_PATIENCE)
            return account, token

    return list(await asyncio.gather(*(shopper(i) for i in range(count))))


async def place(client: ShopClient, token: str, attempts: int = 5) -> str:
    """Place one order as a well-behaved client: a 503 is retried after its Retry-After, and a
    504 (the gateway gave up waiting: the order may or may not exist) at once, both with the
    same Idempotency-Key, so a retry can never make a second order; anything else but 201 fails
    the test, and a 503 must say when to come back."""
    key = uuid.uuid4().hex
    for _ in range(attempts):
        response = await client.place_order(token, [ITEM], idempotency_key=key)
        if response.status_code == 201:
            return str(response.json()["id"])
        if response.status_code == 504:
            continue
        assert response.status_code == 503, response.text
        retry_after = response.headers.get("retry-after")
        assert retry_after, f"503 without Retry-After: {response.text}"
        await asyncio.sleep(min(float(retry_after), 5.0))
    raise AssertionError(f"no order after {attempts} attempts: {response.text}")


async def stock_up(client: ShopClient, system: RunningSystem, orders: int) -> None:
    """Stock for every order a scenario places: it tests an outage, not the shelf running
    empty (the suite's other tests, in any order, order the same sku)."""
    await client.restock(await admin_token(client, system.run_dir), ITEM.sku, orders)


async def wait_all_terminal(
    system: RunningSystem, order_ids: list[str], within: float
) -> dict[str, str]:
    """Status of each order once every one is terminal (or at the deadline), from its database."""
    conn = await asyncpg.connect(system.database_url("orders"))
    try:
        deadline = time.monotonic() + within
        while True:
            rows = await conn.fetch(
                "SELECT id::text, status FROM orders WHERE id = ANY($1::uuid[])", order_ids
            )
            statuses = {row["id"]: row["status"] for row in rows}
            done = len(statuses) == len(order_ids) and all(
                s in TERMINAL_ORDER_STATES for s in statuses.values()
            )
            if done or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def charges_per_order(system: RunningSystem, order_ids: list[str]) -> dict[str, int]:
    """Successful charges recorded by the payment service, per order."""
    conn = await asyncpg.connect(system.database_url("payments"))
    try:
        rows = await conn.fetch(
            "SELECT order_id::text, count(*) AS n FROM payments "
            "WHERE kind = 'charge' AND status = 'succeeded' AND order_id = ANY($1::uuid[]) "
            "GROUP BY order_id",
            order_ids,
        )
    finally:
        await conn.close()
    return {row["order_id"]: int(row["n"]) for row in rows}


async def dlq_depths(system: RunningSystem) -> dict[str, int]:
    connection = await aio_pika.connect(system.amqp_url)
    try:
        channel = await connection.channel()
        depths = {}
        for name in DLQS:
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = queue.declaration_result.message_count or 0
        return depths
    finally:
        await connection.close()


def record(scenario: str, **counts: object) -> None:
    """Print a scenario's counts; appended as a JSON line to SHOP_E2E_FIGURES_FILE when set
    (tests/compose shows them in its "compose figures")."""
    line = json.dumps({"scenario": scenario, **counts})
    print(f"fault figures: {line}")
    if path := os.environ.get("SHOP_E2E_FIGURES_FILE"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def route_config(route: str, path: Path = ROUTES_FILE) -> dict[str, Any]:
    """One route of the gateway's route table, as configured."""
    routes: list[dict[str, Any]] = yaml.safe_load(path.read_text())["routes"]
    [found] = [r for r in routes if r["name"] == route]
    return found


def redis_failure_mode(route: str) -> str:
    """The configured rate-limit behaviour of a gateway route when Redis is down."""
    return str(route_config(route)["rate_limit"]["fail"])


async def test_user_service_down_without_a_cached_user_gives_503_then_recovers(
    client: ShopClient, controllable: RunningSystem
) -> None:
    [(_, token)] = await shoppers(client, controllable, 1)  # never looked up by the order service
    stopped = time.monotonic()
    await asyncio.gather(controllable.stop_instance("user-1"), controllable.stop_instance("user-2"))
    try:
        response = await client.place_order(token, [ITEM])
        assert response.status_code == 503, response.text
        assert response.headers.get("retry-after")
        assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        await asyncio.gather(
            controllable.start_instance("user-1"), controllable.start_instance("user-2")
        )
    # start_instance returns once both instances answer their health checks. What is left is the
    # order service's side: its gRPC channel retries with a backoff that grew while the service
    # was down (x1.6 a step, +-20 % jitter: the next try comes within ~1.6 x the outage), then its
    # user breaker lets a trial call through after its recovery time. Twice that is the deadline.
    down = time.monotonic() - stopped
    reconnect = 1.2 * (1.6 * down + 1.0)
    recovery = OrderSettings.model_fields["user_breaker_recovery_seconds"].default

    async def orders_work_again() -> bool:
        response = await client.place_order(token, [ITEM])
        assert response.status_code in (201, 503), response.text  # recovering, never a 500
        return response.status_code == 201

    await eventually(
        orders_work_again,
        timeout=2 * (reconnect + recovery),
        interval=0.5,
        what="orders to work again after the user service returned",
    )
    record(
        "user service down",
        seconds_down=round(down, 1),
        seconds_until_orders_work_after_restart=round(time.monotonic() - stopped - down, 1),
    )


async def test_a_thousand_orders_while_payment_is_killed_and_restarted(
    client: ShopClient, controllable: RunningSystem
) -> None:
    users = await shoppers(client, controllable, 25)  # 40 orders each: under the route's limit
    await stock_up(client, controllable, 1_000)
    before = await dlq_depths(controllable)
    restarts = await controllable.restarts("payment")
    placed: list[str] = []
    halfway = asyncio.Event()

    async def place_many(token: str) -> None:
        for _ in range(40):
            placed.append(await place(client, token))
            if len(placed) >= 500:
                halfway.set()

    async def kill_payment_midway() -> None:
        await halfway.wait()
        await controllable.kill_instance("payment")  # SIGKILL; its supervisor restarts it

    await asyncio.gather(*(place_many(t) for _, t in users), kill_payment_midway())
    assert len(placed) == 1000
    assert await controllable.restarts("payment") > restarts, "payment was not restarted"
    statuses = await wait_all_terminal(controllable, placed, within=180)
    stuck = {s for s in statuses.values() if s not in TERMINAL_ORDER_STATES}
    assert len(statuses) == 1000 and not stuck, f"orders left non-terminal: {stuck}"
    paid = [oid for oid, s in statuses.items() if s == "PAID"]
    charges = await charges_per_order(controllable, placed)
    record(
        "1000 orders, payment killed",
        orders=len(statuses),
        statuses=dict(sorted(Counter(statuses.values()).items())),
        double_charges=sum(1 for n in charges.values() if n > 1),
        payment_restarts=await controllable.restarts("payment") - restarts,
    )
    assert paid and all(charges.get(oid) == 1 for oid in paid), "a paid order has != 1 charge"
    assert set(charges) <= set(paid), "an order was charged without becoming PAID"
    assert await dlq_depths(controllable) == before


async def test_redis_unreachable_degrades_as_configured_without_500_and_recovers(
    client: ShopClient, controllable: RunningSystem
) -> None:
    assert redis_failure_mode("users") == "open" and redis_failure_mode("payments") == "closed"
    [(account, token)] = await shoppers(client, controllable, 1)
    admin = await admin_token(client, controllable.run_dir)
    await stock_up(client, controllable, 2)
    order_id = await place(client, token)  # a 503 left by an earlier scenario is waited out
    await controllable.cut("redis")
    try:
        reads = [await client.get_user(token, account.id) for _ in range(5)]
        assert [r.status_code for r in reads] == [200] * 5, [r.text for r in reads]
        assert all(r.headers.get("x-cache") != "HIT" for r in reads), "cache not bypassed"
        placed = await client.place_order(token, [ITEM])  # fail-open route, cached user lookup
        assert placed.status_code == 201, placed.text
        closed = await client.http.get(
            "/api/payments",
            params={"order_id": order_id},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert closed.status_code == 503, closed.text  # the fail-closed route
        assert closed.headers.get("retry-after")
    finally:
        await controllable.restore("redis")
    ttl = float(route_config("user").get("cache_ttl_seconds") or 0)  # GET /api/users/{id}

    async def cache_serves_again() -> bool:
        response = await client.get_user(token, account.id)
        assert response.status_code == 200, response.text
        return not ttl or response.headers.get("x-cache") == "HIT"

    # Redis is back at once (the proxy passes again); the gateway's pool then reconnects on its
    # next command. A HIT needs one MISS to store the entry: a few round trips, bounded by the
    # cache TTL (after it, a MISS would be expiry, not the outage).
    await eventually(
        cache_serves_again,
        timeout=ttl or 5.0,
        interval=0.5,
        what="the response cache to serve from Redis again",
    )
    record(
        "redis cut",
        user_reads_200=len(reads),
        fail_open_order=placed.status_code,
        fail_closed_route=closed.status_code,
    )


async def test_rabbitmq_connections_dropped_during_traffic_lose_nothing(
    client: ShopClient, controllable: RunningSystem
) -> None:
    users = await shoppers(client, controllable, 10)
    await stock_up(client, controllable, 60)
    placed: list[tuple[str, str]] = []

    async def place_many(token: str, count: int) -> None:
        for _ in range(count):
            placed.append((token, await place(client, token)))

    await asyncio.gather(*(place_many(t, 3) for _, t in users))
    await controllable.cut("rabbitmq")
    try:
        await asyncio.gather(*(place_many(t, 3) for _, t in users))  # the outbox holds them
    finally:
        await controllable.restore("rabbitmq")
    statuses = await wait_all_terminal(controllable, [oid for _, oid in placed], within=120)
    record(
        "rabbitmq cut during traffic",
        orders=len(placed),
        statuses=dict(sorted(Counter(statuses.values()).items())),
    )
    assert sorted(statuses.values()) == ["PAID"] * len(placed), statuses
    orders = [await client.get_order(token, oid) for token, oid in placed[:10]]
    assert {o["status"] for o in orders} == {"PAID"}  # and the gateway tells the same story
