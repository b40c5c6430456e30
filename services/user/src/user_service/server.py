"""Building, running and stopping the gRPC server of the user service."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import grpc
from aio_pika.abc import AbstractRobustConnection
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from shop_common.auth import CachingTokenVerifier
from shop_common.discovery import (
    HealthCheck,
    Registry,
    ServiceRegistration,
    local_instance,
    registry_from_settings,
)
from shop_common.logging import configure_logging, get_logger
from shop_common.messaging import SHOP_TOPOLOGY, OutboxRelay, Publisher, connect, declare
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from user_service.adapters.database import asyncpg_dsn, create_engine, create_read_pool
from user_service.adapters.repository import UserRepository
from user_service.adapters.update_hub import UpdateHub
from user_service.domain.listing import PageTokenCodec
from user_service.grpc.interceptors import CallPipeline, call_pipeline
from user_service.grpc.servicer import UserServicer
from user_service.health import SERVICE_NAME, DatabaseHealth
from user_service.migrate import migrate
from user_service.service_layer.users import UserService
from user_service.settings import Settings

log = get_logger(__name__)


def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    """Keepalive and message-size options (as in the seed's server)."""
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
    ]


@dataclass
class UserServer:
    """A started server and what it owns; `stop()` shuts it all down in order."""

    server: grpc.aio.Server
    port: int
    settings: Settings
    hub: UpdateHub
    health: DatabaseHealth
    repository: UserRepository
    pipeline: CallPipeline
    registration: ServiceRegistration
    relay: OutboxRelay | None = None
    broker: AbstractRobustConnection | None = None
    stopped: bool = False

    def calls_in_flight(self) -> int:
        """Calls being handled now (health checks included)."""
        return self.pipeline.in_flight

    async def stop(self, grace: float | None = None) -> None:
        """Deregister, stop accepting, drain in-flight calls within the grace period, close hub and
        pool (a second call does nothing)."""
        if self.stopped:
            return
        self.stopped = True
        grace = self.settings.grace_period if grace is None else grace
        # Withdrawn from discovery first, so no new client picks this instance while it drains.
        await self.registration.__aexit__(None, None, None)
        await self.registration.registry.close()
        log.info("deregistered", instance_id=self.registration.instance.instance_id)
        await self.health.stop()
        # Streams that would never end on their own (subscriptions) are ended first.
        await self.hub.stop()
        await self.server.stop(grace)
        if self.relay is not None:
            # Drain: what was committed before the stop is published before the pool closes.
            await self.relay.stop()
        if self.broker is not None:
            await self.broker.close()
        await self.repository.engine.dispose()
        if self.repository.reader is not None:
            await self.repository.reader.close()
        if self.repository.read_pool is not None:
            await self.repository.read_pool.close()
        log.info("user service stopped")


async def create_server(
    settings: Settings, address: str | None = None, registry: Registry | None = None
) -> tuple[UserServer, int]:
    """Migrate (if enabled), wire everything, bind `address` (default HOST:GRPC_PORT), start,
    and register in `registry` (default: Consul when CONSUL_HTTP_ADDR is set, else static)."""
    if settings.apply_migrations_on_start:
        await migrate(settings.database_url)
    engine = create_engine(settings)
    repository = UserRepository(
        engine,
        await create_read_pool(settings),
        coalesce_queries=settings.get_user_coalesce_queries,
    )
    hub = UpdateHub(asyncpg_dsn(settings.database_url))
    # Verified tokens are served from memory for TOKEN_CACHE_SECONDS (never past their exp).
    verifier = CachingTokenVerifier(
        settings.jwt_public_keys,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_leeway_seconds,
        max_age_seconds=settings.token_cache_seconds,
    )
    pipeline = call_pipeline(
        verifier,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
    )
    server = grpc.aio.server(interceptors=[pipeline], options=grpc_options(settings))
    service = UserService(repository, PageTokenCodec(settings.page_token_secret))
    user_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(service, hub), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = address or f"{settings.host}:{settings.grpc_port}"
    port = server.add_insecure_port(address)
    db_health = DatabaseHealth(
        health_servicer,
        repository,
        interval=settings.health_check_interval,
        timeout=settings.health_check_timeout,
    )
    relay, broker = (
        await start_outbox_relay(settings, engine)
        if settings.outbox_relay_enabled
        else (None, None)
    )
    await hub.start()
    await db_health.start()
    await server.start()
    log.info("user service started", port=port, health_service=SERVICE_NAME)
    registration = await register(settings, address.rsplit(":", 1)[0], port, registry)
    running = UserServer(
        server, port, settings, hub, db_health, repository, pipeline, registration, relay, broker
    )
    return running, port


async def register(
    settings: Settings, bind_host: str, port: int, registry: Registry | None
) -> ServiceRegistration:
    """Announce this instance: Consul probes its grpc.health.v1 status for the UserService and
    expects a TTL heartbeat; with the static registry this is a logged no-op."""
    registry = registry or registry_from_settings(settings)
    registration = ServiceRegistration(
        registry,
        local_instance(settings.service_name, bind_host.strip("[]"), port, tags=("grpc",)),
        HealthCheck.grpc(
            SERVICE_NAME,
            interval=settings.registration_check_interval,
            ttl=settings.registration_ttl,
            deregister_critical_after=settings.registration_deregister_critical_after,
        ),
    )
    instance = await registration.__aenter__()
    log.info(
        "registered",
        registry=type(registry).__name__,
        instance_id=instance.instance_id,
        address=instance.address,
    )
    return registration


async def start_outbox_relay(
    settings: Settings, engine: AsyncEngine
) -> tuple[OutboxRelay, AbstractRobustConnection]:
    """Connect to RabbitMQ, declare the topology and relay user.* events from the outbox."""
    broker = await connect(settings.amqp_url, name=settings.service_name)
    channel = await broker.channel()
    await declare(channel, SHOP_TOPOLOGY)
    await channel.close()
    relay = OutboxRelay(engine, Publisher(broker))
    await relay.start()
    return relay, broker


async def serve(settings: Settings | None = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    settings = settings or Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    running, _ = await create_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", grace=settings.grace_period)
    await running.stop()


def main() -> None:
    """Entry point of `python -m user_service` and the `user-service` script."""
    asyncio.run(serve())
