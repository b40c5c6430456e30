"""A real user service on an ephemeral port (fresh database) behind an app mounting only the
transcoding router, served by a real uvicorn (streams and disconnects behave as in production).

The signing key, issuer and `serve` come from the gateway integration conftest one level up.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from gateway.entrypoints.transcoding import build_users_router, user_service_breaker
from shop_common.auth import SigningKey, TokenIssuer
from shop_common.clients.user import UserClient
from shop_common.discovery import StaticRegistry
from shop_common.resilience import BreakerConfig, CircuitBreaker
from shop_common.web import instrument_app
from user_service.server import UserServer, create_server
from user_service.settings import Settings

from ..conftest import AUDIENCE, ISSUER, serve


@pytest.fixture
def admin_token(issuer: TokenIssuer) -> str:
    return issuer.issue("9000000", ["admin"])


def user_settings(database_url: str, signing_key: SigningKey) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_public_keys={signing_key.kid: signing_key.public_pem},
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        health_check_interval=0.2,
        grace_period=1.0,
        outbox_relay_enabled=False,
    )


StartUserServer = Callable[..., Awaitable[UserServer]]


@pytest_asyncio.fixture
async def start_user_server(
    database_url: str, signing_key: SigningKey
) -> AsyncIterator[StartUserServer]:
    """Starts user servers (on `address`, default an ephemeral port); all stopped at the end."""
    started: list[UserServer] = []

    async def start(address: str = "127.0.0.1:0") -> UserServer:
        running, _ = await create_server(user_settings(database_url, signing_key), address)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop(grace=0.2)


@pytest_asyncio.fixture
async def user_server(start_user_server: StartUserServer) -> UserServer:
    return await start_user_server()


@dataclass
class Gateway:
    """The app under test, its URL, and what the tests inspect."""

    url: str
    client: UserClient
    breaker: CircuitBreaker
    http: httpx.AsyncClient


MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest_asyncio.fixture
async def make_gateway() -> AsyncIterator[MakeGateway]:
    """Builds app + uvicorn for a user-service address; everything closed at the end."""
    cleanups: list[Callable[[], Awaitable[Any]]] = []

    async def make(
        address: str,
        *,
        timeout_seconds: float = 20.0,
        breaker_config: BreakerConfig | None = None,
        heartbeat_seconds: float = 15.0,
    ) -> Gateway:
        client = UserClient([address], default_timeout=timeout_seconds, max_attempts=2)
        breaker = user_service_breaker(f"grpc:user:test-{uuid.uuid4().hex[:8]}", breaker_config)
        app = FastAPI()
        instrument_app(app)
        app.include_router(
            build_users_router(
                client,
                breaker=breaker,
                timeout_seconds=timeout_seconds,
                heartbeat_seconds=heartbeat_seconds,
            )
        )
        running = await serve(app, StaticRegistry({}))
        http = httpx.AsyncClient(base_url=running.url, timeout=10)

        async def close() -> None:
            await http.aclose()
            await running.stop()
            await client.close()

        cleanups.append(close)
        return Gateway(running.url, client, breaker, http)

    yield make
    for close in reversed(cleanups):
        await close()


@pytest_asyncio.fixture
async def gateway(user_server: UserServer, make_gateway: MakeGateway) -> Gateway:
    return await make_gateway(f"127.0.0.1:{user_server.port}")


NewUser = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_user(gateway: Gateway, admin_token: str) -> NewUser:
    """Creates a user through the gateway (unique email); returns its JSON."""

    async def create(*, roles: tuple[str, ...] = ("user",), name: str = "Ada") -> dict[str, Any]:
        response = await gateway.http.post(
            "/api/users",
            json={
                "email": f"u-{uuid.uuid4().hex[:12]}@example.com",
                "name": name,
                "password": "correct horse battery",
                "roles": list(roles),
            },
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return user

    return create
