"""THE composition root of the order service: `bootstrap(settings, **overrides)` starts every
adapter and background worker on one AsyncExitStack and yields the `App` the entrypoints use.

Start order: migrations, engine and units of work, topology check, broker and its declarations,
outbox relay, user cache, user client and lookup (with refresh-ahead), price cache and catalog
lookup (with refresh-ahead), the use cases, consumers,
saga-timeout sweeper, messaging monitor, then discovery registration. A failure part-way, or
leaving the block, unwinds whatever had started, last-started first (deregistration first, the
relay drains what was committed before the broker closes, the engine goes last).

Every adapter can be injected (tests): what is injected is used as is and not closed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection
from shop_common.cache import MultiLevelCache, RefreshAhead
from shop_common.clients.user import UserClient
from shop_common.discovery import (
    HealthCheck,
    Registry,
    ServiceRegistration,
    local_instance,
    registry_from_settings,
)
from shop_common.logging import get_logger
from shop_common.messaging import (
    SHOP_TOPOLOGY,
    OutboxRelay,
    Publisher,
    Topology,
    connect,
    declare,
    is_connected,
)
from shop_common.messaging.monitor import MessagingMonitor
from shop_common.migrations import migrate
from shop_common.observability import configure_tracing
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from order_service.adapters.catalog import CatalogPrices
from order_service.adapters.metrics import count_saga_outcome
from order_service.adapters.unit_of_work import sql_unit_of_work
from order_service.adapters.user_cache import CacheShape, OwnedCache, build_cache, build_user_cache
from order_service.adapters.users import UserCache, UserLookup
from order_service.domain.listing import OrderPageTokens, PageSizes
from order_service.entrypoints.consumers import (
    catalog_changes,
    payment_results,
    queue_consumer,
    user_changes,
)
from order_service.entrypoints.sweeper import SagaTimeoutSweeper
from order_service.service_layer.orders import Clock, OrderService, PlaceOrder, utc_now
from order_service.service_layer.prices import PriceBook
from order_service.service_layer.unit_of_work import UnitOfWorkFactory
from order_service.service_layer.users import UserDirectory
from order_service.settings import Settings

log = get_logger(__name__)

PAYMENT_RESULTS_QUEUE = "order.payment-results"
USER_CHANGES_QUEUE = "order.user-changes"
CATALOG_CHANGES_QUEUE = "order.catalog-changes"
CONSUMED_QUEUES = (PAYMENT_RESULTS_QUEUE, USER_CHANGES_QUEUE, CATALOG_CHANGES_QUEUE)

ReadinessCheck = Callable[[], Awaitable[bool]]


def topology_for(settings: Settings) -> Topology:
    """The shop topology with this deployment's retry delay tiers."""
    return SHOP_TOPOLOGY.with_retry_delays(tuple(settings.retry_delays_ms))


@dataclass(frozen=True, slots=True)
class App:
    """What the entrypoints of a started order service use (and tests look at)."""

    settings: Settings
    orders: OrderService
    place_order: PlaceOrder
    users: UserDirectory
    prices: PriceBook
    page_tokens: OrderPageTokens
    page_sizes: PageSizes
    database_ready: ReadinessCheck
    broker_ready: ReadinessCheck
    broker: AbstractRobustConnection
    cache: OwnedCache | None  # the user cache when bootstrap built it (tests look into it)


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    unit_of_work: UnitOfWorkFactory | None = None,
    broker: AbstractRobustConnection | None = None,
    publisher: Publisher | None = None,
    cache: UserCache | None = None,
    user_client: UserClient | None = None,
    users: UserDirectory | None = None,
    prices: PriceBook | None = None,
    registry: Registry | None = None,
    clock: Clock = utc_now,
    consumed_queues: Sequence[str] = CONSUMED_QUEUES,
) -> AsyncIterator[App]:
    """The running order service, stopped when the block is left (see the module docstring)."""
    topology = topology_for(settings)
    for queue_handlers in (payment_results, user_changes, catalog_changes):
        queue_handlers.check(topology)  # the handlers take what each queue is bound to
    async with AsyncExitStack() as stack:
        # First in, last out: the spans of the whole stop are flushed (shop_common.observability).
        tracing = configure_tracing(settings.service_name, settings)
        stack.push_async_callback(tracing.aclose)
        if settings.apply_migrations_on_start:
            await migrate("order_service", settings.database_url)
        if engine is None:
            engine = create_async_engine(
                settings.database_url,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                pool_timeout=5,
            )
            stack.push_async_callback(engine.dispose)
        orders = OrderService(
            unit_of_work or sql_unit_of_work(engine), clock=clock, outcomes=count_saga_outcome
        )

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
        stack.push_async_callback(relay.stop)

        owned: OwnedCache | None = None
        if users is None:
            if cache is None:
                owned = cache = await build_user_cache(settings)
                stack.push_async_callback(owned.close)
            if user_client is None:
                user_client = UserClient(
                    [a.strip() for a in settings.user_service_addresses.split(",") if a.strip()],
                    default_timeout=settings.user_lookup_attempt_timeout_seconds,
                    max_attempts=2,
                )
                stack.push_async_callback(user_client.close)
            ahead: RefreshAhead | None = None
            if settings.user_cache_refresh_ahead and isinstance(cache, MultiLevelCache):
                ahead = RefreshAhead(
                    cache, settings.user_cache_ttl_seconds, settings.user_cache_refresh_after
                )
                stack.push_async_callback(ahead.wait_idle)  # before the client and cache close
            users = UserLookup.from_settings(settings, user_client, cache, ahead)
        if prices is None:
            price_cache = await build_cache(settings, CacheShape.prices(settings))
            stack.push_async_callback(price_cache.close)
            price_ahead = RefreshAhead(
                price_cache, settings.price_cache_ttl_seconds, settings.price_cache_refresh_after
            )
            catalog = CatalogPrices.from_settings(settings, price_cache, price_ahead)
            stack.push_async_callback(catalog.close)
            stack.push_async_callback(price_ahead.wait_idle)  # before the session and cache close
            prices = catalog

        for queue in consumed_queues:
            consumer = queue_consumer(broker, queue, settings, topology, orders, users, prices)
            await consumer.start()
            stack.push_async_callback(consumer.stop)
        sweeper = SagaTimeoutSweeper(
            orders,
            timeout=settings.saga_timeout_seconds,
            interval=settings.saga_sweep_interval_seconds,
        )
        await sweeper.start()
        stack.push_async_callback(sweeper.stop)
        monitor = MessagingMonitor(
            broker,
            topology.monitored_queues(CONSUMED_QUEUES),
            relay,
            interval=settings.broker_metrics_interval_seconds,
        )
        await monitor.start()
        stack.push_async_callback(monitor.stop)

        if registry is None:
            registry = registry_from_settings(settings)
            stack.push_async_callback(registry.close)
        instance = local_instance(settings.service_name, settings.host, settings.http_port)
        await stack.enter_async_context(
            ServiceRegistration(registry, instance, HealthCheck.http("/ready"))
        )

        async def database_ready() -> bool:
            """One round trip to PostgreSQL."""
            assert engine is not None
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True

        async def broker_ready() -> bool:
            """The AMQP connection is up (not reconnecting)."""
            assert broker is not None
            return is_connected(broker)

        app = App(
            settings=settings,
            orders=orders,
            place_order=PlaceOrder(users, prices, orders),
            users=users,
            prices=prices,
            page_tokens=OrderPageTokens(settings.page_token_secret),
            page_sizes=PageSizes(settings.page_size_default, settings.page_size_max),
            database_ready=database_ready,
            broker_ready=broker_ready,
            broker=broker,
            cache=owned,
        )
        log.info("order_service_started", consuming=list(consumed_queues))
        try:
            yield app
        finally:
            log.info("order_service_stopping")
    log.info("order_service_stopped")
