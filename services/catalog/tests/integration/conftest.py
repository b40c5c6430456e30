"""Fixtures: the catalog app started in-process (its real lifespan) on a fresh database, Redis
namespace and RabbitMQ vhost.

`start_app(**overrides)` builds `create_app(settings)`, runs its lifespan (bootstrap: migrations,
broker, relay, cache, view counter, sweeper) and returns a CatalogApp with an httpx client over
ASGI and an engine of the test's own on the database; every app started is stopped at the end.
Two apps started by one test share database, Redis namespace and vhost: two instances.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from catalog_service.bootstrap import App
from catalog_service.entrypoints.http import create_app
from catalog_service.settings import Settings
from fastapi import FastAPI
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ISSUER = "shop-gateway"
AUDIENCE = "shop"


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("catalog-test-kid")


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, ISSUER, AUDIENCE)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def as_admin(issuer: TokenIssuer) -> dict[str, str]:
    return bearer(issuer.issue("1", ["admin"]))


@pytest.fixture
def as_user(issuer: TokenIssuer) -> dict[str, str]:
    return bearer(issuer.issue("7", ["user"]))


@dataclass
class CatalogApp:
    """One started app and what tests reach into."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    engine: AsyncEngine
    stack: contextlib.AsyncExitStack

    @property
    def running(self) -> App:
        running = self.app.state.app
        assert isinstance(running, App)
        return running

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(sql), params)

    async def stop(self) -> None:
        await self.stack.aclose()


StartApp = Callable[..., Awaitable[CatalogApp]]


@pytest.fixture
def make_settings(
    database_url: str,
    redis_url: str,
    redis_namespace: str,
    amqp_vhost_url: str,
    signing_key: SigningKey,
) -> Callable[..., Settings]:
    """Settings on this test's database, Redis namespace and vhost (overrides on top)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_url,
            "product_cache_namespace": redis_namespace + "products",
            "amqp_url": amqp_vhost_url,
            "jwt_public_keys": {signing_key.kid: signing_key.public_pem},
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "outbox_poll_interval_seconds": 0.2,
            "view_flush_interval_seconds": 0.1,
            "http_port": 0,
            "database_pool_size": 4,
            **overrides,
        }
        return Settings(**values)

    return make


@pytest_asyncio.fixture
async def start_app(make_settings: Callable[..., Settings]) -> AsyncIterator[StartApp]:
    started: list[CatalogApp] = []

    async def start(**overrides: Any) -> CatalogApp:
        settings = make_settings(**overrides)
        app = create_app(settings)
        stack = contextlib.AsyncExitStack()
        engine = create_async_engine(settings.database_url, pool_size=2)
        stack.push_async_callback(engine.dispose)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog")
        )
        running = CatalogApp(app, client, settings, engine, stack)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.stop()


@pytest_asyncio.fixture
async def catalog(start_app: StartApp) -> CatalogApp:
    return await start_app()
