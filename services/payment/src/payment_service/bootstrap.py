"""The composition root: `async with bootstrap(settings, **overrides) as app:` runs the service.

In order: migrate (if enabled), engine, broker (topology checked against the handlers and
declared), provider behind its breaker, use cases, outbox relay, queue monitor, consumer, then
discovery registration. Everything is entered on one AsyncExitStack, so a failing step unwinds
what had started, and the exit stops in the order that loses nothing: deregister, stop consuming
(in-flight messages finish), let the relay drain what they committed, stop the monitor, close
broker and pool. Each adapter can be passed in (tests); what is passed in is the caller's to
close. `App` is what the entrypoints need.
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
    Consumer,
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
from shop_common.resilience import CircuitBreaker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.adapters.provider.guarded import GuardedProvider, provider_breaker
from payment_service.adapters.provider.simulated import SimulatedProvider, provider_from_settings
from payment_service.adapters.unit_of_work import SqlUnitOfWorkFactory, create_engine
from payment_service.entrypoints.consumers import QUEUE as ORDER_EVENTS_QUEUE
from payment_service.entrypoints.consumers import order_events
from payment_service.service_layer.payments import PaymentService
from payment_service.service_layer.provider import PaymentProvider
from payment_service.service_layer.provider_admin import ProviderAdmin
from payment_service.service_layer.unit_of_work import UnitOfWorkFactory
from payment_service.settings import Settings

log = get_logger(__name__)

ReadyCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class App:
    """What the entrypoints need from a started payment service.

    `consumer` and `monitor` are the message side's live state (in-flight deliveries, queue
    depths), which the stop log and the tests read.
    """

    settings: Settings
    payments: PaymentService
    provider_admin: ProviderAdmin
    database_ready: ReadyCheck
    broker_ready: ReadyCheck
    consumer: Consumer
    monitor: MessagingMonitor


def topology_from_settings(settings: Settings) -> Topology:
    """The shop's topology with this deployment's delay tiers."""
    return SHOP_TOPOLOGY.with_retry_delays(settings.retry_delays_ms)


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    uow: UnitOfWorkFactory | None = None,
    broker: AbstractRobustConnection | None = None,
    publisher: Publisher | None = None,
    provider: PaymentProvider | None = None,
    breaker: CircuitBreaker | None = None,
    registry: Registry | None = None,
) -> AsyncIterator[App]:
    """Start the payment service, yield its App, stop it on exit (see the module docstring)."""
    if settings.apply_migrations_on_start:
        await migrate("payment_service", settings.database_url)
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
        topology = topology_from_settings(settings)
        order_events.check(topology)  # the handlers take what the queue is bound to
        channel = await broker.channel()
        await declare(channel, topology)
        await channel.close()

        provider = provider or provider_from_settings(settings)
        guarded = GuardedProvider(
            provider,
            breaker
            or provider_breaker(
                settings.breaker_consecutive_failures, settings.breaker_recovery_seconds
            ),
        )
        payments = PaymentService(uow or SqlUnitOfWorkFactory(engine), guarded)
        switches = provider if isinstance(provider, SimulatedProvider) else None
        provider_admin = ProviderAdmin(switches, lambda: guarded.breaker.state.value)

        relay = OutboxRelay(
            engine,
            publisher or Publisher(broker),
            poll_interval=settings.outbox_poll_interval_seconds,
        )
        monitor = MessagingMonitor(
            broker,
            topology.monitored_queues([ORDER_EVENTS_QUEUE]),
            relay,
            interval=settings.broker_metrics_interval_seconds,
        )
        await monitor.start()
        stack.push_async_callback(monitor.stop)  # stops after the drain, before the broker
        await relay.start()
        stack.push_async_callback(relay.stop)  # drains after the consumer has stopped
        consumer = Consumer(
            broker,
            ORDER_EVENTS_QUEUE,
            order_events.bind(payments),
            prefetch=settings.consumer_prefetch,
            concurrency=settings.consumer_concurrency,
            max_attempts=settings.consumer_max_attempts,
            topology=topology,
        )
        await consumer.start()
        stack.push_async_callback(consumer.stop)
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

        log.info(
            "payment_service_started",
            queue=ORDER_EVENTS_QUEUE,
            prefetch=settings.consumer_prefetch,
            concurrency=settings.consumer_concurrency,
            retry_delays_ms=list(settings.retry_delays_ms),
        )
        try:
            yield App(
                settings,
                payments,
                provider_admin,
                database_ready,
                broker_ready,
                consumer,
                monitor,
            )
        finally:
            log.info("payment_service_stopping", in_flight=consumer.in_flight)
    log.info("payment_service_stopped")
