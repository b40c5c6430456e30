"""Fixtures of the adversarial suite: the launched system (tests/conftest.py), accounts made once
per session, and the gateway's address for `shop_testing.rawhttp.raw_request`.
"""

from __future__ import annotations

import asyncio
import time
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


# Tokens are made again once they are this old: a third of the gateway's 15-minute token life.
# The suite's tests are spread over the whole (shuffled) run, which can outlast a token.
TOKEN_REFRESH_SECONDS = 300.0


@dataclass
class _Cast:
    """The session's accounts and their current tokens, and when those were made."""

    actors: Actors
    made: float


async def _log_in(system: RunningSystem, alice: Account, bob: Account) -> Actors:
    client = ShopClient(system.gateway_url)
    try:
        return Actors(
            await admin_token(client, system.run_dir),
            alice,
            await login(client, alice.email, alice.password),
            bob,
            await login(client, bob.email, bob.password),
        )
    finally:
        await client.close()


@pytest.fixture(scope="session")
def _cast(system: RunningSystem) -> _Cast:
    """An admin and two users, created once per session through the gateway."""

    async def make() -> Actors:
        client = ShopClient(system.gateway_url)
        try:
            admin = await admin_token(client, system.run_dir)
            alice = await new_user(client, admin, "Alice Attacked")
            bob = await new_user(client, admin, "Bob Attacker")
        finally:
            await client.close()
        return await _log_in(system, alice, bob)

    return _Cast(asyncio.run(make()), time.monotonic())


@pytest.fixture
def actors(system: RunningSystem, _cast: _Cast) -> Actors:
    """The session's admin, Alice and Bob, with tokens that are valid for the whole test."""
    if time.monotonic() - _cast.made > TOKEN_REFRESH_SECONDS:
        old = _cast.actors
        _cast.actors = asyncio.run(_log_in(system, old.alice, old.bob))
        _cast.made = time.monotonic()
    return _cast.actors


@pytest_asyncio.fixture
async def client(system: RunningSystem) -> AsyncIterator[ShopClient]:
    """A polite client (httpx) of the gateway, for set-up and for checking that nothing changed."""
    shop = ShopClient(system.gateway_url)
    yield shop
    await shop.close()
