"""Fixtures of the adversarial suite: the launched system (tests/conftest.py), accounts made once
per session, and the gateway's address for `shop_common.testing.rawhttp.raw_request`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from shop_devstack.accounts import Account, admin_token, login, new_user
from shop_devstack.client import ShopClient
from shop_devstack.running import RunningSystem

SECURITY_SUITE = Path(__file__).parent
# The first test to ask for the system waits for the launcher (as tests/integration's do): on a
# busy machine that takes longer than the default per-test timeout.
LAUNCH_TIMEOUT_SECONDS = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give this suite's tests the launcher's patience unless a test sets its own timeout."""
    for item in items:
        if item.path.is_relative_to(SECURITY_SUITE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LAUNCH_TIMEOUT_SECONDS))


@dataclass(frozen=True)
class Actors:
    """Who attacks and who is attacked: an admin and two ordinary users, with tokens."""

    admin_token: str
    alice: Account
    alice_token: str
    bob: Account
    bob_token: str


@pytest.fixture(scope="session")
def gateway_url(system: RunningSystem) -> str:
    """The launched system's gateway."""
    return system.gateway_url


@pytest.fixture(scope="session")
def actors(system: RunningSystem) -> Actors:
    """An admin and two users, created once per session through the gateway."""

    async def make() -> Actors:
        client = ShopClient(system.gateway_url)
        try:
            admin = await admin_token(client, system.run_dir)
            alice = await new_user(client, admin, "Alice Attacked")
            bob = await new_user(client, admin, "Bob Attacker")
            return Actors(
                admin,
                alice,
                await login(client, alice.email, alice.password),
                bob,
                await login(client, bob.email, bob.password),
            )
        finally:
            await client.close()

    return asyncio.run(make())


@pytest_asyncio.fixture
async def client(system: RunningSystem) -> AsyncIterator[ShopClient]:
    """A polite client (httpx) of the gateway, for set-up and for checking that nothing changed."""
    shop = ShopClient(system.gateway_url)
    yield shop
    await shop.close()
