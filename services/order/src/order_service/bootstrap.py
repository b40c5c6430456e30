"""Composition root: everything the running order service owns, started and stopped in order."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from aio_pika.abc import AbstractRobustConnection
from shop_common.clients.user import UserClient
from shop_common.logging import get_logger
from shop_common.messaging import (
    SHOP_TOPOLOGY,
    Consumer,
    OutboxRelay,
    Publisher,
    Topology,
    connect,
    declare,
    is_connected,
)
from shop_common.messaging.monitor import MessagingMonitor
from shop_common.resilience import BreakerConfig, CircuitBreaker, RetryPolicy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from order_service.consumers import payment_results, user_changes
from order_service.domain.listing import PageTokenCodec
from order_service.migrate import migrate
from order_service.service_layer.orders import OrderService
from order_service.settings import Settings
from order_service.sweeper import SagaTimeoutSweeper
from order_service.user_cache import OwnedCache, build_user_cache
from order_service.user_lookup import UserCache, UserLookup

log = get_logger(__name__)

PAYMENT_RESULTS_QUEUE = "order.payment-results"
USER_CHANGES_QUEUE = "order.user-changes"
CONSUMED_QUEUES = (PAYMENT_RESULTS_QUEUE, USER_CHANGES_QUEUE)


def topology_for(settings: Settings) -> Topology:
    """The shop topology with this deployment's retry delay tiers."""
    return SHOP_TOPOLOGY.with_retry_delays(tuple(settings.retry_delays_ms))


@dataclass
class OrderRuntime:
    """A started order service: its pools, broker connection, background workers and services.

    `closing` holds what was started, in order; `stop()` unwinds it last-started-first:
    monitor, sweeper, consumers (in-flight messages finish), user client, cache, relay
    (drains what was committed), broker, engine.
    """

    settings: Settings
    engine: AsyncEngine
    service: OrderService
    lookup: UserLookup
    page_tokens: PageTokenCodec
    broker: AbstractRobustConnection
    cache: OwnedCache | None
    closing: AsyncExitStack
    consumers: list[Consumer] = field(default_factory=list)

    async def database_ready(self) -> bool:
        """One round trip to PostgreSQL."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def broker_ready(self) -> bool:
        """The AMQP connection is up (not reconnecting)."""
        return is_connected(self.broker)

    async def stop(self) -> None:
        """Stop everything in reverse start order."""
        await self.closing.aclose()
        log.info("order service stopped")


def user_lookup(settings: Settings, client: UserClient, cache: UserCache) -> UserLookup:
    """The lookup with its breaker, retry and deadline from settings."""
    breaker = CircuitBreaker(
        "user-service",
        BreakerConfig(
            consecutive_failures=settings.user_breaker_failures,
            recovery_timeout=settings.user_breaker_recovery_seconds,
        ),
    )
    return UserLookup(
        client,
        cache,
        breaker,
        retry=RetryPolicy(max_attempts=settings.user_lookup_attempts, max_backoff=0.2),
        deadline_seconds=settings.user_lookup_deadline_seconds,
        attempt_timeout_seconds=settings.user_lookup_attempt_timeout_seconds,
        ttl_seconds=settings.user_cache_ttl_seconds,
        negative_ttl_seconds=settings.user_cache_negative_ttl_seconds,
        default_retry_after=settings.user_unavailable_retry_after_seconds,
    )


async def start_runtime(
    settings: Settings,
    *,
    cache: UserCache | None = None,
    user_client: UserClient | None = None,
    consumed_queues: Sequence[str] = CONSUMED_QUEUES,
) -> OrderRuntime:
    """Migrate, connect, declare, start relay, consumers, sweeper and monitor; return them.

    A failure part-way stops what had started before re-raising.
    """
    if settings.apply_migrations_on_start:
        await migrate(settings.database_url)
    async with AsyncExitStack() as stack:
        engine = create_async_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=5,
        )
        stack.push_async_callback(engine.dispose)
        service = OrderService(async_sessionmaker(engine, expire_on_commit=False))
        topology = topology_for(settings)
        for registry in (payment_results, user_changes):
            registry.check(topology)  # the handlers take what each queue is bound to
        broker = await connect(settings.amqp_url, name=settings.service_name)
        stack.push_async_callback(broker.close)
        channel = await broker.channel()
        await declare(channel, topology)
        await channel.close()
        relay = OutboxRelay(
            engine, Publisher(broker), poll_interval=settings.outbox_poll_interval_seconds
        )
        await relay.start()
        stack.push_async_callback(relay.stop)
        owned: OwnedCache | None = None
        if cache is None:
            owned = cache = await build_user_cache(settings)
            stack.push_async_callback(owned.close)
        client = user_client or UserClient(
            [a.strip() for a in settings.user_service_addresses.split(",") if a.strip()],
            default_timeout=settings.user_lookup_attempt_timeout_seconds,
            max_attempts=2,
        )
        stack.push_async_callback(client.close)
        lookup = user_lookup(settings, client, cache)
        runtime = OrderRuntime(
            settings,
            engine,
            service,
            lookup,
            PageTokenCodec(settings.page_token_secret),
            broker,
            owned,
            stack,
        )
        handlers = {
            PAYMENT_RESULTS_QUEUE: payment_results.bind(service),
            USER_CHANGES_QUEUE: user_changes.bind(lookup),
        }
        for queue in consumed_queues:
            consumer = Consumer(
                broker,
                queue,
                handlers[queue],
                prefetch=settings.consumer_prefetch,
                concurrency=settings.consumer_concurrency,
                max_attempts=settings.consumer_max_attempts,
                topology=topology,
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            runtime.consumers.append(consumer)
        sweeper = SagaTimeoutSweeper(
            service,
            timeout=settings.saga_timeout_seconds,
            interval=settings.saga_sweep_interval_seconds,
        )
        await sweeper.start()
        stack.push_async_callback(sweeper.stop)
        monitor = MessagingMonitor(
            broker,
            [topology.queue(q).dlq for q in CONSUMED_QUEUES],
            relay,
            interval=settings.broker_metrics_interval_seconds,
        )
        await monitor.start()
        stack.push_async_callback(monitor.stop)
        runtime.closing = stack.pop_all()
    log.info("order service started", consuming=list(consumed_queues))
    return runtime
