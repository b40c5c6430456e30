"""Fixtures: the payment app started in-process (its real lifespan) on a fresh database and vhost.

`start_app(**overrides)` builds `create_app(settings, provider=...)`, runs its lifespan (bootstrap:
migrations, broker, consumer, relay) and returns an httpx client over ASGI; every app started is
stopped at the end. The test keeps the simulated provider it passed in and an engine of its own
on the service's database (for assertions).
`broker` publishes order events and `payment_results` collects what the app publishes on the
`payments` exchange (through the queue `order.payment-results`, which nothing else drains here).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from fastapi import FastAPI
from payment_service.adapters.provider.simulated import SimulatedProvider, provider_from_settings
from payment_service.bootstrap import App
from payment_service.entrypoints.http import create_app
from payment_service.settings import Settings
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.messaging import (
    EventEnvelope,
    OrderCancelled,
    Publisher,
    StockLine,
    StockReserved,
    connect,
    new_event,
)
from shop_common.messaging.handlers import exchange_of
from shop_testing import wait
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ISSUER = "shop-gateway"
AUDIENCE = "shop"
RESULTS_QUEUE = "order.payment-results"
FAST_TIERS = (100, 200, 400)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """The shared poller, shop_testing.wait.eventually (kept as a fixture: these test
    modules cannot import conftest under importlib mode)."""
    return wait.eventually


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("payment-test-kid")


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, ISSUER, AUDIENCE)


@pytest.fixture
def admin_token(issuer: TokenIssuer) -> str:
    return issuer.issue("1", ["admin"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def as_user(issuer: TokenIssuer) -> Callable[[int], dict[str, str]]:
    """Authorization headers of a plain user."""
    return lambda user_id: bearer(issuer.issue(str(user_id), ["user"]))


@pytest.fixture
def as_admin(admin_token: str) -> dict[str, str]:
    return bearer(admin_token)


def make_settings(
    database_url: str, amqp_url: str, signing_key: SigningKey, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "jwt_public_keys": {signing_key.kid: signing_key.public_pem},
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "retry_delays_ms": FAST_TIERS,
        "consumer_max_attempts": 30,
        "outbox_poll_interval_seconds": 0.2,
        "broker_metrics_interval_seconds": 0.2,
        "breaker_recovery_seconds": 0.2,
        "provider_latency_ms": 0,
        "provider_decline_above": Decimal("500.00"),
        "http_port": 0,
        "database_pool_size": 4,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def make_settings_fn() -> Callable[..., Settings]:
    """make_settings, for test modules (they cannot import conftest under importlib mode)."""
    return make_settings


@dataclass
class PaymentApp:
    """One started app and what tests reach into."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    provider: SimulatedProvider
    engine: AsyncEngine
    stack: contextlib.AsyncExitStack

    @property
    def running(self) -> App:
        running = self.app.state.app
        assert isinstance(running, App)
        return running

    async def stop(self) -> None:
        await self.stack.aclose()


StartApp = Callable[..., Awaitable[PaymentApp]]


@pytest_asyncio.fixture
async def start_app(
    database_url: str, amqp_vhost_url: str, signing_key: SigningKey
) -> AsyncIterator[StartApp]:
    started: list[PaymentApp] = []

    async def start(**overrides: Any) -> PaymentApp:
        settings = make_settings(database_url, amqp_vhost_url, signing_key, **overrides)
        provider = provider_from_settings(settings)
        app = create_app(settings, provider=provider)
        stack = contextlib.AsyncExitStack()
        engine = create_async_engine(settings.database_url, pool_size=2)
        stack.push_async_callback(engine.dispose)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://payment")
        )
        running = PaymentApp(app, client, settings, provider, engine, stack)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await within(20, running.stop(), "stopping the app")


async def within(seconds: float, step: Awaitable[None], what: str) -> None:
    """Await step; past the deadline fail with every task's stack (a hang names its await)."""
    try:
        async with asyncio.timeout(seconds):
            await step
    except TimeoutError:
        stacks = []
        for task in asyncio.all_tasks():
            out = io.StringIO()
            task.print_stack(file=out)
            stacks.append(out.getvalue())
        raise AssertionError(f"{what} took over {seconds}s:\n" + "\n".join(stacks)) from None


@pytest_asyncio.fixture
async def payment_app(start_app: StartApp) -> PaymentApp:
    return await start_app()


@dataclass
class Broker:
    """The test's side of the vhost: publishes order events, collects payment results."""

    connection: AbstractRobustConnection
    publisher: Publisher
    results: list[EventEnvelope] = field(default_factory=list)

    async def publish(self, envelope: EventEnvelope) -> None:
        """To the exchange that publishes the event's type (stock.* catalog, order.* orders)."""
        await self.publisher.publish(exchange_of(envelope.event_type), envelope)

    async def stock_reserved(self, total: str = "20.50", user_id: int = 7) -> StockReserved:
        event = StockReserved(
            order_id=uuid4(),
            user_id=user_id,
            items=[StockLine(sku="SKU-1", quantity=1)],
            total=Decimal(total),
            currency="EUR",
        )
        await self.publish(new_event("stock.reserved", event, correlation_id=str(event.order_id)))
        return event

    async def order_cancelled(self, order_id: UUID, user_id: int = 7) -> None:
        event = OrderCancelled(order_id=order_id, user_id=user_id, refund_required=True)
        await self.publish(new_event("order.cancelled", event, correlation_id=str(order_id)))

    def results_for(self, order_id: UUID) -> list[EventEnvelope]:
        return [e for e in self.results if e.payload.get("order_id") == str(order_id)]

    async def result(self, order_id: UUID, event_type: str, seconds: float = 20) -> EventEnvelope:
        """The first result of that type for the order, waiting up to seconds."""

        async def arrived() -> bool:
            return any(e.event_type == event_type for e in self.results_for(order_id))

        await wait.eventually(arrived, timeout=seconds)
        return next(e for e in self.results_for(order_id) if e.event_type == event_type)


@pytest_asyncio.fixture
async def broker(payment_app: PaymentApp, amqp_vhost_url: str) -> AsyncIterator[Broker]:
    """Needs the app first: its start declares the topology this consumes from."""
    connection = await connect(amqp_vhost_url)
    tap = Broker(connection, Publisher(connection))
    channel = await connection.channel()
    queue = await channel.declare_queue(RESULTS_QUEUE, passive=True)

    async def collect(message: AbstractIncomingMessage) -> None:
        tap.results.append(EventEnvelope.from_json(message.body))
        await message.ack()

    await queue.consume(collect)
    yield tap
    await within(20, channel.close(), "closing the test channel")
    await within(20, connection.close(), "closing the test connection")
