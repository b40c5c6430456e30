"""THE composition root of the user service.

    async with bootstrap(settings, **overrides) as app:
        ...  # serving on app.port, registered in discovery

One AsyncExitStack: each step pushes its own undo as soon as it has started, so a start that
fails half-way unwinds exactly what had started, and leaving the block stops everything in
reverse order: deregister (still SERVING), report NOT_SERVING, end the update streams, drain
the calls in flight within the grace period, drain the outbox relay, close the broker, the
reads, the pools and the engine. With METRICS_PORT set, /metrics is served over HTTP (first
started, last stopped); the outbox lag is sampled beside the relay. Every adapter can be
injected through `overrides` (tests); bootstrap closes what it runs, injected or built.
`serve()` runs it until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TypedDict, Unpack

import asyncpg
from aio_pika.abc import AbstractRobustConnection
from shop_common.auth import CachingTokenVerifier, TokenVerifier
from shop_common.discovery import (
    HealthCheck,
    Registry,
    ServiceRegistration,
    local_instance,
    registry_from_settings,
)
from shop_common.logging import configure_logging, get_logger
from shop_common.messaging import SHOP_TOPOLOGY, OutboxRelay, Publisher, connect, declare
from shop_common.messaging.monitor import MessagingMonitor
from shop_common.metrics import metrics_server
from shop_common.migrations import migrate
from shop_common.observability import configure_tracing, rpc_server_spans
from sqlalchemy.ext.asyncio import AsyncEngine

from user_service.adapters.database import (
    UNAVAILABLE_ERRORS,
    asyncpg_dsn,
    create_engine,
    create_read_pool,
)
from user_service.adapters.passwords import Argon2Hasher
from user_service.adapters.reads import SqlUserReads
from user_service.adapters.unit_of_work import SqlUnitOfWork
from user_service.adapters.update_hub import UpdateHub
from user_service.domain.listing import UserPageTokens
from user_service.entrypoints.grpc.health import SERVICE_NAME
from user_service.entrypoints.grpc.server import GrpcServer, build_server
from user_service.service_layer.ports import PasswordHasher
from user_service.service_layer.unit_of_work import UnitOfWorkFactory
from user_service.service_layer.users import UserService
from user_service.settings import Settings

log = get_logger(__name__)


class Overrides(TypedDict, total=False):
    """What a test may inject instead of what bootstrap would build from settings."""

    address: str  # bind address (default HOST:GRPC_PORT; port 0 picks a free one)
    registry: Registry  # default: Consul with CONSUL_HTTP_ADDR, else the static registry
    engine: AsyncEngine
    read_pool: asyncpg.Pool
    reads: SqlUserReads
    uow_factory: UnitOfWorkFactory
    hasher: PasswordHasher
    updates: UpdateHub
    verifier: TokenVerifier
    connect_broker: Callable[[], Awaitable[AbstractRobustConnection]]


@dataclass(frozen=True)
class App:
    """The running service: the use cases and update feed the gRPC edge serves, the server
    itself, its discovery registration, and the read side (tests read its coalescing counters)."""

    settings: Settings
    users: UserService
    updates: UpdateHub
    reads: SqlUserReads
    server: GrpcServer
    registration: ServiceRegistration
    relay: OutboxRelay | None
    metrics_port: int | None = None  # where /metrics is served (None: METRICS_PORT=0)

    @property
    def port(self) -> int:
        """The port the gRPC server listens on."""
        return self.server.port

    def calls_in_flight(self) -> int:
        """Calls being handled now (health checks included)."""
        return self.server.calls_in_flight()


@asynccontextmanager
async def bootstrap(settings: Settings, **overrides: Unpack[Overrides]) -> AsyncIterator[App]:
    """Migrate (if enabled), start every adapter, serve, register; unwind it all on exit."""
    if settings.apply_migrations_on_start:
        await migrate("user_service", settings.database_url)
    async with AsyncExitStack() as stack:
        # First in, last out: the spans of the whole stop are flushed (shop_common.observability).
        tracing = configure_tracing(settings.service_name, settings)
        stack.push_async_callback(tracing.aclose)
        metrics_port = await stack.enter_async_context(
            metrics_server(settings.host, settings.metrics_port)
        )
        engine = overrides.get("engine") or create_engine(settings)
        stack.push_async_callback(engine.dispose)
        reads = overrides.get("reads")
        if reads is None:
            read_pool = overrides.get("read_pool") or await create_read_pool(settings)
            stack.push_async_callback(read_pool.close)
            reads = SqlUserReads(
                engine, read_pool, coalesce_queries=settings.get_user_coalesce_queries
            )
        stack.push_async_callback(reads.close)  # before its pool: the reader holds connections
        relay = (
            await _start_relay(stack, settings, engine, overrides)
            if settings.outbox_relay_enabled
            else None
        )
        updates = overrides.get("updates") or UpdateHub(asyncpg_dsn(settings.database_url))
        await updates.start()
        stack.push_async_callback(updates.stop)
        users = UserService(
            reads,
            overrides.get("uow_factory") or (lambda: SqlUnitOfWork(engine)),
            overrides.get("hasher") or Argon2Hasher(settings.password_hash_concurrency),
            UserPageTokens(settings.page_token_secret),
        )
        server = build_server(
            settings,
            address=overrides.get("address") or f"{settings.host}:{settings.grpc_port}",
            users=users,
            updates=updates,
            verifier=overrides.get("verifier") or _verifier(settings),
            ping=reads.ping,
            unavailable=UNAVAILABLE_ERRORS,
            spans=rpc_server_spans(tracing.provider),
        )
        await server.health.start()
        stack.push_async_callback(server.health.stop)
        await server.server.start()
        stack.push_async_callback(_stop_serving, server, updates)
        log.info("user_service_started", port=server.port, health_service=SERVICE_NAME)
        registration = await stack.enter_async_context(
            _registered(settings, server, overrides.get("registry"))
        )
        yield App(settings, users, updates, reads, server, registration, relay, metrics_port)
    log.info("user_service_stopped")


def _verifier(settings: Settings) -> TokenVerifier:
    """Verified tokens are served from memory for TOKEN_CACHE_SECONDS (never past their exp)."""
    return CachingTokenVerifier(
        settings.jwt_public_keys,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_leeway_seconds,
        max_age_seconds=settings.token_cache_seconds,
    )


async def _start_relay(
    stack: AsyncExitStack, settings: Settings, engine: AsyncEngine, overrides: Overrides
) -> OutboxRelay:
    """Connect to RabbitMQ, declare the topology and relay user.* events from the outbox."""
    connect_broker = overrides.get("connect_broker")
    broker = await (
        connect_broker()
        if connect_broker
        else connect(settings.amqp_url, name=settings.service_name)
    )
    stack.push_async_callback(broker.close)
    channel = await broker.channel()
    await declare(channel, SHOP_TOPOLOGY)
    await channel.close()
    relay = OutboxRelay(engine, Publisher(broker))
    await relay.start()
    # Drains on stop: what was committed before the stop is published before the pool closes.
    stack.push_async_callback(relay.stop)
    # Samples shop_outbox_lag_seconds and shop_outbox_pending (the user service consumes no queue).
    monitor = MessagingMonitor(broker, (), relay, interval=settings.metrics_interval_seconds)
    await monitor.start()
    stack.push_async_callback(monitor.stop)
    return relay


async def _stop_serving(server: GrpcServer, updates: UpdateHub) -> None:
    """NOT_SERVING first, then end the streams that would never end on their own
    (subscriptions), then stop accepting and let calls in flight finish within the grace."""
    await server.health.stop()
    await updates.stop()
    await server.server.stop(server.grace)


@asynccontextmanager
async def _registered(
    settings: Settings, server: GrpcServer, registry: Registry | None
) -> AsyncIterator[ServiceRegistration]:
    """Announce this instance: Consul probes its grpc.health.v1 status for the UserService and
    expects a TTL heartbeat; with the static registry this is a logged no-op. Withdrawn first at
    stop, so no new client picks this instance while it drains."""
    registry = registry or registry_from_settings(settings)
    bind_host = server.address.rsplit(":", 1)[0].strip("[]")
    registration = ServiceRegistration(
        registry,
        local_instance(settings.service_name, bind_host, server.port, tags=("grpc",)),
        HealthCheck.grpc(
            SERVICE_NAME,
            interval=settings.registration_check_interval,
            ttl=settings.registration_ttl,
            deregister_critical_after=settings.registration_deregister_critical_after,
        ),
    )
    try:
        async with registration as instance:
            log.info(
                "registered",
                registry=type(registry).__name__,
                instance_id=instance.instance_id,
                address=instance.address,
            )
            yield registration
    finally:
        await registry.close()
        log.info("deregistered", instance_id=registration.instance.instance_id)


async def serve(settings: Settings | None = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    settings = settings or Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    async with bootstrap(settings):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting_down", grace=settings.grace_period)
