"""Fixtures of the adversarial suite: the launched system (tests/conftest.py), accounts made once
per session, and the gateway's address for `shop_common.testing.rawhttp.raw_request`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from shop_devstack.accounts import Account, admin_token, login, new_user
from shop_devstack.client import ShopClient
from shop_devstack.running import RunningSystem


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
