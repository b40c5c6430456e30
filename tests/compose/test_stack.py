"""The system in containers, end to end: every service healthy, a login, an order PAID.

Marked `docker` (and `slow`): a cold run builds the images (minutes); a warm one reuses
Docker's build cache and spends its time in `up --wait`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from order_service.settings import Settings as OrderSettings
from shop_devstack.accounts import admin_token, login, new_user
from shop_devstack.client import TERMINAL_ORDER_STATES, Item, ShopClient, check
from shop_devstack.compose_stack import CORE_SERVICES, MEMORY_BUDGET_MB, Running, core_memory
from shop_testing.wait import eventually

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]
JOBS = {"keygen", "user-migrate", "order-migrate", "payment-migrate"}


@pytest_asyncio.fixture
async def client(compose_system: Running) -> AsyncIterator[ShopClient]:
    shop = ShopClient(compose_system.gateway_url)
    try:
        yield shop
    finally:
        await shop.close()


def test_every_service_is_healthy_and_every_job_succeeded(compose_system: Running) -> None:
    out = compose_system.stack.output("ps", "--all", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):  # older Compose: one JSON array
        rows = rows[0]
    states = {row["Service"]: row for row in rows}
    expected = {"postgres", "redis", "rabbitmq", "user-1", "user-2", "order", "payment", "gateway"}
    if not compose_system.stack.offline:
        expected.add("consul")
    assert expected <= set(states), f"missing: {expected - set(states)}"
    for name in expected:
        assert states[name]["Health"] == "healthy", f"{name}: {states[name]}"
    for name in JOBS:
        assert states[name]["State"] == "exited" and states[name]["ExitCode"] == 0, states[name]


def test_the_core_stack_fits_in_its_memory_budget(compose_system: Running) -> None:
    usage = compose_system.stack.memory()
    running = {n.removeprefix(f"{compose_system.stack.project}-")[:-2] for n in usage}
    assert set(CORE_SERVICES) <= running, f"not running: {set(CORE_SERVICES) - running}"
    core = core_memory(usage)
    assert 0 < core < MEMORY_BUDGET_MB, f"core stack {core:.0f} MiB: {usage}"


async def test_the_gateway_is_ready_and_publishes_its_keys(compose_system: Running) -> None:
    async with httpx.AsyncClient(base_url=compose_system.gateway_url, timeout=10) as http:
        check(await http.get("/ready"), 200)
        keys = check(await http.get("/.well-known/jwks.json"), 200).json()["keys"]
    assert compose_system.kid in [k["kid"] for k in keys], keys


async def test_a_user_logs_in_and_an_order_becomes_paid(
    client: ShopClient, compose_system: Running
) -> None:
    admin = await admin_token(client, compose_system.run_dir)
    # Stock for this order: the stack is shared with the end-to-end suite, whose scenarios may
    # have sold the sku out (an order placed then is REJECTED, rightly).
    await client.restock(admin, "BOOK-001", 2)
    account = await new_user(client, admin, "Compose Buyer")
    token = await login(client, account.email, account.password)
    response = check(await client.place_order(token, [Item("BOOK-001", 2)]), 201, 202)
    order_id = str(response.json()["id"])
    order: dict[str, object] = {}

    async def terminal() -> bool:
        order.update(await client.get_order(token, order_id))
        return order["status"] in TERMINAL_ORDER_STATES

    # Bounded by the saga itself: the order service fails a PENDING order after
    # SAGA_TIMEOUT_SECONDS, so by then the order is terminal whatever happened.
    timeout = OrderSettings.model_fields["saga_timeout_seconds"].default + 30
    await eventually(terminal, timeout=timeout, interval=0.5, what=f"order {order_id} to end")
    assert order["status"] == "PAID", order
    payments = await client.payments_for(token, order_id)
    charges = [p for p in payments if p.get("kind") == "charge"]
    assert [p.get("status") for p in charges] == ["succeeded"], payments


async def test_a_shopper_signs_up_through_the_storefront_in_containers(
    client: ShopClient, compose_system: Running
) -> None:
    """The web container's sign-up works once the accounts exist (what `make compose-up` does
    with ensure_accounts): it signs up as its registrar account, never as an admin."""
    await admin_token(client, compose_system.run_dir)  # creates the sign-up account with it
    email = f"compose.shopper.{uuid.uuid4().hex[:8]}@shop.example"
    async with httpx.AsyncClient(base_url=compose_system.gateway_url, timeout=30) as http:
        signed_up = await http.post(
            "/web/signup",
            json={"email": email, "name": "Compose Shopper", "password": "a long enough password"},
        )
    assert signed_up.status_code == 201, signed_up.text
    token = await login(client, email, "a long enough password")
    assert token
