"""Fixtures: the order app in process (lifespan run) against real PostgreSQL, RabbitMQ and Redis,
a real user service (its gRPC server, as services/user's tests start it) and a real catalog
service (its HTTP app served by uvicorn on a thread, with its seed catalog), on ephemeral ports;
and, for the service-layer tests, a migrated engine and the OrderService over it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from catalog_service.entrypoints.http import create_app as create_catalog_app
from catalog_service.settings import Settings as CatalogSettings
from fastapi import FastAPI
from order_service.adapters.unit_of_work import sql_unit_of_work
from order_service.bootstrap import App
from order_service.entrypoints.http import create_app
from order_service.service_layer.orders import OrderService
from order_service.settings import Settings
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.clients.user import UserClient, UserRecord
from shop_common.migrations import migrate
from shop_testing.fuzz import serve_in_thread
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from user_service.server import UserServer, create_server
from user_service.settings import Settings as UserSettings

ISSUER = "shop-gateway"
AUDIENCE = "shop"
ADMIN_ID = "1000000"
# Seed products of the catalog (catalog_service/migrations/versions/0002_seed_products.py).
ITEMS = [{"sku": "BOOK-001", "quantity": 2}]
BOOK_001_PRICE = "41.99"


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on this test's database, migrated."""
    await migrate("order_service", database_url)
    eng = create_async_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def service(engine: AsyncEngine) -> OrderService:
    """The order use cases over the real unit of work."""
    return OrderService(sql_unit_of_work(engine))


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("order-test-kid")


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, ISSUER, AUDIENCE)


@pytest.fixture
def admin_token(issuer: TokenIssuer) -> str:
    return issuer.issue(ADMIN_ID, ["admin"])


class UserService:
    """A real user server that a test can stop and start again on the same port."""

    def __init__(self, settings: UserSettings) -> None:
        self.settings = settings
        self.port = 0
        self.server: UserServer | None = None

    async def start(self) -> None:
        self.server, self.port = await create_server(self.settings, f"127.0.0.1:{self.port}")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=0.2)
            self.server = None


@pytest_asyncio.fixture
async def user_service(
    make_database: Callable[[str], str], amqp_vhost_url: str, signing_key: SigningKey
) -> AsyncIterator[UserService]:
    """The user service with its outbox relay publishing user.* to the test's vhost."""
    service = UserService(
        UserSettings(
            database_url=make_database("users"),
            amqp_url=amqp_vhost_url,
            outbox_relay_enabled=True,
            jwt_public_keys={signing_key.kid: signing_key.public_pem},
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            health_check_interval=0.5,
            grace_period=1.0,
            db_pool_size=2,
            db_max_overflow=2,
            db_read_pool_size=2,
        )
    )
    await service.start()
    yield service
    await service.stop()


@dataclass(frozen=True)
class CatalogService:
    """A real catalog service: its base URL, its address and its database."""

    url: str
    database_url: str

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture
def catalog_service(
    make_database: Callable[[str], str],
    amqp_vhost_url: str,
    redis_url: str,
    redis_namespace: str,
    signing_key: SigningKey,
) -> Iterator[CatalogService]:
    """The catalog (seed products) on the test's vhost, served on an ephemeral port."""
    database_url = make_database("catalog")
    settings = CatalogSettings(
        database_url=database_url,
        amqp_url=amqp_vhost_url,
        redis_url=redis_url,
        product_cache_namespace=f"{redis_namespace}catalog",
        jwt_public_keys={signing_key.kid: signing_key.public_pem},
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        database_pool_size=3,
        outbox_poll_interval_seconds=0.2,
        page_token_secret="test-catalog-page-token-secret",
    )
    with serve_in_thread(create_catalog_app(settings)) as url:
        yield CatalogService(url, database_url)


@pytest.fixture
def order_settings(
    make_database: Callable[[str], str],
    amqp_vhost_url: str,
    redis_url: str,
    redis_namespace: str,
    signing_key: SigningKey,
    user_service: UserService,
    catalog_service: CatalogService,
) -> Callable[..., Settings]:
    """Settings of an order app wired to this test's database, vhost, Redis prefix and user server."""
    database_url = make_database("orders")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "amqp_url": amqp_vhost_url,
            "redis_url": redis_url,
            "user_cache_namespace": f"{redis_namespace}order-users",
            "user_service_addresses": f"127.0.0.1:{user_service.port}",
            "catalog_service_addresses": catalog_service.address,
            "jwt_public_keys": {signing_key.kid: signing_key.public_pem},
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "database_pool_size": 3,
            "database_max_overflow": 2,
            "user_breaker_failures": 2,
            "user_breaker_recovery_seconds": 0.5,
            "outbox_poll_interval_seconds": 0.2,
            "broker_metrics_interval_seconds": 0.5,
            "page_token_secret": "test-page-token-secret",
            **overrides,
        }
        return Settings(**values)

    return make


@dataclass
class RunningApp:
    """An order app whose lifespan is running, with an HTTP client over ASGI."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def runtime(self) -> App:
        runtime: App = self.app.state.app
        return runtime


StartApp = Callable[..., Awaitable[RunningApp]]


@pytest_asyncio.fixture
async def start_app(order_settings: Callable[..., Settings]) -> AsyncIterator[StartApp]:
    """Factory: start an order app with settings overrides; every app is stopped afterwards."""
    stack: list[tuple[Any, httpx.AsyncClient]] = []

    async def start(**overrides: Any) -> RunningApp:
        app = create_app(order_settings(**overrides))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://order.test"
        )
        stack.append((lifespan, http))
        return RunningApp(app, http)

    yield start
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def running(start_app: StartApp) -> RunningApp:
    return await start_app()


@pytest_asyncio.fixture
async def user_client(user_service: UserService) -> AsyncIterator[UserClient]:
    client = UserClient([f"127.0.0.1:{user_service.port}"], default_timeout=10)
    yield client
    await client.close()


Shopper = Callable[..., Awaitable[tuple[UserRecord, str]]]


@pytest.fixture
def shopper(user_client: UserClient, admin_token: str, issuer: TokenIssuer) -> Shopper:
    """Factory: a new user in the user service and a token for it."""

    async def make(name: str = "Grace") -> tuple[UserRecord, str]:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        user = await user_client.create_user(email, name, "correct horse", token=admin_token)
        return user, issuer.issue(str(user.id), ["user"])

    return make


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}
