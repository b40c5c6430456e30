"""Fixtures: a real user server on an ephemeral port against a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.discovery import Registry
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from user_service.server import UserServer, create_server
from user_service.settings import Settings

ISSUER = "shop-gateway"
AUDIENCE = "shop"


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("test-kid")


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, ISSUER, AUDIENCE)


def make_settings(database_url: str, signing_key: SigningKey, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_public_keys={signing_key.kid: signing_key.public_pem},
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        health_check_interval=0.2,
        grace_period=3.0,
        log_json=True,
        **{"outbox_relay_enabled": False, **overrides},
    )


StartServer = Callable[..., Awaitable[UserServer]]


@pytest_asyncio.fixture
async def start_server(database_url: str, signing_key: SigningKey) -> AsyncIterator[StartServer]:
    started: list[UserServer] = []

    async def start(
        url: str | None = None, registry: Registry | None = None, **overrides: Any
    ) -> UserServer:
        settings = make_settings(url or database_url, signing_key, **overrides)
        running, _ = await create_server(settings, "127.0.0.1:0", registry)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop(grace=0.5)


@pytest_asyncio.fixture
async def server(start_server: StartServer) -> UserServer:
    return await start_server()


@pytest_asyncio.fixture
async def channel(server: UserServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> user_pb2_grpc.UserServiceStub:
    return user_pb2_grpc.UserServiceStub(channel)


@pytest.fixture
def admin_token(issuer: TokenIssuer) -> str:
    return issuer.issue("1000000", ["admin"])


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def create_user(
    stub: user_pb2_grpc.UserServiceStub,
    admin_token: str,
    email: str,
    *,
    name: str = "Ada",
    roles: tuple[str, ...] = (),
    password: str = "correct horse",
) -> user_pb2.User:
    response = await stub.CreateUser(
        user_pb2.CreateUserRequest(email=email, name=name, roles=list(roles), password=password),
        metadata=bearer(admin_token),
        timeout=10,
    )
    return response.user
