"""Accounts for the demo, the e2e suite and the load generator.

The first admin cannot be created through the API (creating an admin needs an admin), so the
operator who holds the development signing key (run/jwt-dev-key.json, written by the
launcher) mints one short-lived admin token with it, creates the admin account through the
gateway, and from then on everyone logs in with a password at POST /auth/token like any client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
from shop_common.auth import SigningKey, TokenIssuer

from shop_devstack.client import ApiError, ShopClient
from shop_devstack.devkeys import KEY_FILE, ensure_dev_keys
from shop_devstack.layout import ADMIN_EMAIL, ADMIN_PASSWORD, SIGNUP_EMAIL, SIGNUP_PASSWORD


@dataclass(frozen=True)
class Account:
    """A user we created, with the password we gave it."""

    id: int
    email: str
    password: str
    name: str


def operator_token(run_dir: Path, issuer: str = "shop-gateway", audience: str = "shop") -> str:
    """A 60-second admin token signed with the launcher's development key."""
    if not (run_dir / KEY_FILE).exists():
        raise FileNotFoundError(
            f"no development key in {run_dir} (the system was not started by `make up`)"
        )
    keys = ensure_dev_keys(run_dir)
    issuer_ = TokenIssuer(SigningKey(keys.kid, keys.private_pem), issuer, audience, ttl_seconds=60)
    return issuer_.issue("0", ["admin"])


# Answers a well-behaved client waits out and repeats: rate limited, or the user service busy
# (password hashing is deliberately slow; on a loaded machine it can pass the gateway's deadline).
TRANSIENT = frozenset({429, 503, 504})
T = TypeVar("T")


async def patiently(call: Callable[[], Awaitable[T]], patience: float = 90.0) -> T:
    """call(), repeated after a transient answer (honouring Retry-After) for up to patience s."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return await call()
        except (httpx.ReadError, httpx.RemoteProtocolError):  # connection lost mid-request
            if time.monotonic() + 1 > deadline:
                raise
            await asyncio.sleep(1)
        except ApiError as exc:
            wait = min(float(exc.response.headers.get("retry-after") or 1), 30.0)
            if exc.status not in TRANSIENT or time.monotonic() + wait > deadline:
                raise
            await asyncio.sleep(wait)


async def login(client: ShopClient, email: str, password: str, patience: float = 90.0) -> str:
    """An access token for these credentials (POST /auth/token, patiently)."""
    return await patiently(lambda: client.token(email, password), patience)


async def admin_token(client: ShopClient, run_dir: Path | None) -> str:
    """Log in as the admin, creating the admin account first when it does not exist yet."""
    try:
        return await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    except ApiError as exc:
        if exc.status not in (400, 401, 404) or run_dir is None:
            raise
    try:
        await patiently(
            lambda: client.create_user(
                operator_token(run_dir), ADMIN_EMAIL, "Ada Admin", ADMIN_PASSWORD, ["admin", "user"]
            )
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
    admin = await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    await ensure_signup_account(client, admin)
    return admin


async def ensure_accounts(gateway_url: str, run_dir: Path | None) -> None:
    """The admin account (the console logs in with it) and the web service's sign-up account
    exist: `make up` and `make compose-up` call this once the system is ready."""
    client = ShopClient(gateway_url)
    try:
        await ensure_signup_account(client, await admin_token(client, run_dir))
    finally:
        await client.close()


async def ensure_signup_account(client: ShopClient, admin: str) -> None:
    """The web service's sign-up account exists: role `registrar` only (the user service lets it
    create shopper accounts and nothing else). An existing one (409) is left as it is."""
    try:
        await patiently(
            lambda: client.create_user(
                admin, SIGNUP_EMAIL, "Storefront sign-up", SIGNUP_PASSWORD, ["registrar"]
            )
        )
    except ApiError as exc:
        if exc.status != 409:
            raise


async def new_user(
    client: ShopClient, admin: str, name: str = "Demo User", patience: float = 90.0
) -> Account:
    """Create a fresh user (unique email) and return it with its password.

    Transient answers are retried for up to `patience` seconds (see `patiently`). A retried creation whose first attempt
    did land answers 409 (the email is ours, unique per call): the account then exists, and
    its id is the `sub` of a token obtained with its password.
    """
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:8]}@shop.example"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    attempts = 0

    async def create() -> dict[str, Any]:
        nonlocal attempts
        attempts += 1
        return await client.create_user(admin, email, name, password)

    try:
        user = await patiently(create, patience)
    except ApiError as exc:
        if exc.status != 409 or attempts == 1:
            raise
        claims = jwt.decode(
            await login(client, email, password), options={"verify_signature": False}
        )
        return Account(int(claims["sub"]), email, password, name)
    return Account(int(user["id"]), email, password, name)
