"""What the payment process runs besides HTTP: database, broker, consumer, outbox relay, registration.

`PaymentRuntime.start(settings)` wires it all (the composition root of the message side) and
`stop()` shuts it down in the order that loses nothing: deregister, stop consuming and finish
the messages in flight, let the relay drain what they committed, then close broker and pool.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection
from shop_common.discovery import HealthCheck, ServiceRegistration, local_instance
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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from payment_service.consumers import order_events
from payment_service.migrate import migrate
from payment_service.provider.guarded import GuardedProvider, provider_breaker
from payment_service.provider.simulated import PaymentProvider, ProviderFaults, SimulatedProvider
from payment_service.service_layer.payments import INBOX_CONSUMER, PaymentService
from payment_service.settings import Settings

log = get_logger(__name__)

ORDER_EVENTS_QUEUE = INBOX_CONSUMER  # "payment.order-events", bound to the `orders` exchange


def provider_from_settings(settings: Settings) -> SimulatedProvider:
    """The simulated provider with the fault switches the settings start it with."""
    return SimulatedProvider(
        ProviderFaults(
            latency_ms=settings.provider_latency_ms,
            transient_failure_rate=settings.provider_transient_failure_rate,
            decline_above=settings.provider_decline_above,
            down=settings.provider_down,
        )
    )


def topology_from_settings(settings: Settings) -> Topology:
    """The shop's topology with this deployment's delay tiers."""
    return SHOP_TOPOLOGY.with_retry_delays(settings.retry_delays_ms)


def create_engine(settings: Settings) -> AsyncEngine:
    """The pooled asyncpg engine of the payments database."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_timeout=5,
        connect_args={"timeout": 5, "server_settings": {"application_name": settings.service_name}},
    )


@dataclass
class PaymentRuntime:
    """The started message side of one payment process."""

    settings: Settings
    engine: AsyncEngine
    broker: AbstractRobustConnection
    provider: PaymentProvider
    guarded: GuardedProvider
    service: PaymentService
    consumer: Consumer
    relay: OutboxRelay
    monitor: MessagingMonitor
    registration: ServiceRegistration
    _stack: contextlib.AsyncExitStack

    @classmethod
    async def start(
        cls, settings: Settings, provider: PaymentProvider | None = None
    ) -> PaymentRuntime:
        """Migrate (if enabled), connect, declare the topology and start every loop."""
        if settings.apply_migrations_on_start:
            await migrate(settings.database_url)
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
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
                provider_breaker(
                    settings.breaker_consecutive_failures, settings.breaker_recovery_seconds
                ),
            )
            service = PaymentService(async_sessionmaker(engine, expire_on_commit=False), guarded)

            relay = OutboxRelay(
                engine, Publisher(broker), poll_interval=settings.outbox_poll_interval_seconds
            )
            spec = topology.queue(ORDER_EVENTS_QUEUE)
            monitor = MessagingMonitor(
                broker,
                [spec.name, spec.dlq],
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
                order_events.bind(service),
                prefetch=settings.consumer_prefetch,
                concurrency=settings.consumer_concurrency,
                max_attempts=settings.consumer_max_attempts,
                topology=topology,
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            registry = _registry_from_settings(settings)
            stack.push_async_callback(registry.close)
            registration = ServiceRegistration(
                registry,
                local_instance(settings.service_name, settings.host, settings.http_port),
                HealthCheck.http("/ready"),
            )
            await stack.enter_async_context(registration)
            runtime = cls(
                settings,
                engine,
                broker,
                provider,
                guarded,
                service,
                consumer,
                relay,
                monitor,
                registration,
                stack.pop_all(),
            )
        log.info(
            "payment runtime started",
            queue=ORDER_EVENTS_QUEUE,
            prefetch=settings.consumer_prefetch,
            concurrency=settings.consumer_concurrency,
            retry_delays_ms=list(settings.retry_delays_ms),
        )
        return runtime

    async def stop(self) -> None:
        """Deregister, stop consuming (in-flight messages finish), drain the relay, close."""
        log.info("payment runtime stopping", in_flight=self.consumer.in_flight)
        await self._stack.aclose()
        log.info("payment runtime stopped")

    async def database_ready(self) -> bool:
        """The payments database answers a query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def broker_ready(self) -> bool:
        """The broker connection is up (not reconnecting)."""
        return is_connected(self.broker)

    @property
    def simulated(self) -> SimulatedProvider | None:
        """The simulated provider when that is what runs (the admin fault switches need it)."""
        return self.provider if isinstance(self.provider, SimulatedProvider) else None
