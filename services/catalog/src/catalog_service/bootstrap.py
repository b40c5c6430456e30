"""The composition root: `async with bootstrap(settings, **overrides) as app:` runs the service.

In order: migrate (if enabled), tracing, engine, broker (topology declared), outbox relay,
product cache (Redis, coherence subscriber), view counter (write-behind flusher), use cases,
the consumer of catalog.order-events (the saga's stock side), reservation sweeper, messaging
monitor, then discovery registration. Everything is entered on one AsyncExitStack, so a
failing step unwinds what had started, and the exit stops in reverse: deregister, stop the
sweeper, flush the view counts, close the cache, let the relay drain, close broker and pool, flush the spans.
Each adapter can be passed in (tests); what is passed in is the caller's to close. `App` is
what the entrypoints need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection
from shop_common.discovery import HealthCheck, Registry, ServiceRegistration, local_instance
from shop_common.discovery import registry_from_settings as _registry_from_settings
from shop_common.logging import get_logger
from shop_common.messaging import (
    SHOP_TOPOLOGY,
    OutboxRelay,
    Publisher,
    connect,
    declare,
    is_connected,
)
from shop_common.messaging.batch import BatchConsumer
from shop_common.messaging.monitor import MessagingMonitor
from shop_common.migrations import migrate
from shop_common.observability import configure_tracing
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog_service.adapters.product_cache import ProductCache, redis_client
from catalog_service.adapters.unit_of_work import SqlUnitOfWorkFactory, create_engine
from catalog_service.adapters.views import ViewCounter
from catalog_service.domain.listing import PageSizes, ProductPageTokens
from catalog_service.entrypoints.consumers import BATCHED, order_events, settle_batch
from catalog_service.entrypoints.consumers import QUEUE as ORDER_EVENTS_QUEUE
from catalog_service.entrypoints.sweeper import ReservationSweeper
from catalog_service.service_layer.catalog import CatalogAdmin, CatalogReads
from catalog_service.service_layer.ports import ProductCache as ProductCachePort
from catalog_service.service_layer.ports import UnitOfWorkFactory
from catalog_service.service_layer.reservations import Reservations
from catalog_service.settings import Settings

log = get_logger(__name__)

ReadyCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class App:
    """What the entrypoints (and the tests) need from a started catalog service."""

    settings: Settings
    reads: CatalogReads
    admin: CatalogAdmin
    reservations: Reservations
    page_tokens: ProductPageTokens
    page_sizes: PageSizes
    cache: ProductCachePort
    views: ViewCounter
    relay: OutboxRelay
    database_ready: ReadyCheck
    broker_ready: ReadyCheck


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    uow: UnitOfWorkFactory | None = None,
    broker: AbstractRobustConnection | None = None,
    publisher: Publisher | None = None,
    cache: ProductCachePort | None = None,
    registry: Registry | None = None,
    consume: bool = True,
) -> AsyncIterator[App]:
    """Start the catalog service, yield its App, stop it on exit (see the module docstring).
    consume=False: no consumer of the saga's order events (tests that drive reservations)."""
    topology = SHOP_TOPOLOGY.with_retry_delays(tuple(settings.retry_delays_ms))
    order_events.check(topology)  # the handlers take what the queue is bound to
    if settings.apply_migrations_on_start:
        await migrate("catalog_service", settings.database_url)
    async with AsyncExitStack() as stack:
        # First in, last out: the spans of the whole stop are flushed (shop_common.observability).
        tracing = configure_tracing(settings.service_name, settings)
        stack.push_async_callback(tracing.aclose)
        if engine is None:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
        if broker is None:
            broker = await connect(settings.amqp_url, name=settings.service_name)
            stack.push_async_callback(broker.close)
        channel = await broker.channel()
        await declare(channel, topology)
        await channel.close()
        relay = OutboxRelay(
            engine,
            publisher or Publisher(broker),
            poll_interval=settings.outbox_poll_interval_seconds,
        )
        await relay.start()
        stack.push_async_callback(relay.stop)  # drains what the use cases committed

        if cache is None:
            owned = ProductCache(settings, redis_client(settings))
            await owned.start()
            stack.push_async_callback(owned.close)
            cache = owned
        views = ViewCounter(
            engine,
            flush_interval=settings.view_flush_interval_seconds,
            batch_size=settings.view_flush_batch,
            name=f"{settings.service_name}:views",
        )
        views.start()
        stack.push_async_callback(views.stop)  # the last counts reach the database

        units = uow or SqlUnitOfWorkFactory(engine)
        reads = CatalogReads(units, cache, views)
        admin = CatalogAdmin(units, cache)
        reservations = Reservations(units, settings.reservation_ttl_seconds)
        if consume:
            consumer = BatchConsumer(
                broker,
                ORDER_EVENTS_QUEUE,
                order_events.bind(reservations),
                batch_handler=settle_batch(reservations),
                batch_types=BATCHED,
                max_batch=settings.consumer_batch_size,
                linger=settings.consumer_batch_linger_seconds,
                prefetch=settings.consumer_prefetch,
                concurrency=settings.consumer_concurrency,
                max_attempts=settings.consumer_max_attempts,
                topology=topology,
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
        sweeper = ReservationSweeper(
            reservations, interval=settings.reservation_sweep_interval_seconds
        )
        await sweeper.start()
        stack.push_async_callback(sweeper.stop)
        monitor = MessagingMonitor(
            broker,
            topology.monitored_queues([ORDER_EVENTS_QUEUE]),
            relay,
            interval=settings.broker_metrics_interval_seconds,
        )
        await monitor.start()
        stack.push_async_callback(monitor.stop)

        if registry is None:
            registry = _registry_from_settings(settings)
            stack.push_async_callback(registry.close)
        await stack.enter_async_context(
            ServiceRegistration(
                registry,
                local_instance(settings.service_name, settings.host, settings.http_port),
                HealthCheck.http("/ready"),
            )
        )

        async def database_ready() -> bool:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True

        connection = broker

        async def broker_ready() -> bool:
            return is_connected(connection)

        log.info("catalog_service_started", port=settings.http_port)
        try:
            yield App(
                settings,
                reads,
                admin,
                reservations,
                ProductPageTokens(settings.page_token_secret),
                PageSizes(settings.page_size_default, settings.page_size_max),
                cache,
                views,
                relay,
                database_ready,
                broker_ready,
            )
        finally:
            log.info("catalog_service_stopping")
    log.info("catalog_service_stopped")
