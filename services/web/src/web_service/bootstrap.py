"""The composition root: `async with bootstrap(settings, **overrides) as app:` runs the service.

In order: tracing, the gateway client (sign-up, orders), the use cases, the registry, the
console (its scraper of every instance's /metrics, which runs only while an admin watches), the
dead-letter browser (its broker connection opened on first use), the chaos switches' client,
then discovery registration.
Everything is entered on one AsyncExitStack, so a failing step unwinds what had started, and the
exit stops in reverse: deregister, stop the console, close the client, flush the spans. Each
adapter can be passed in (tests); what is passed in is the caller's to close. `App` is what the
entrypoints need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from shop_common.discovery import HealthCheck, Registry, ServiceRegistration, local_instance
from shop_common.discovery import registry_from_settings as _registry_from_settings
from shop_common.logging import get_logger
from shop_common.observability import configure_tracing

from web_service.adapters.chaos_client import ChaosClient
from web_service.adapters.dead_letters import BrokerDeadLetters
from web_service.adapters.gateway import GatewayClient
from web_service.adapters.metrics_scraper import MetricsScraper
from web_service.domain.traces import TraceBook
from web_service.service_layer.console import ConsoleFeed
from web_service.service_layer.order_watch import OrderWatch
from web_service.service_layer.ports import (
    Accounts,
    ChaosSwitches,
    DeadLetters,
    MetricsSource,
    OrderReader,
)
from web_service.service_layer.signup import SignUp
from web_service.settings import Settings

log = get_logger(__name__)

# The console's services: the name it shows → the name in discovery.
CONSOLE_SERVICES = {
    "gateway": "gateway",
    "user-service": "user-service-metrics",
    "catalog-service": "catalog-service",
    "order-service": "order-service",
    "payment-service": "payment-service",
    "web-service": "web-service",
}


@dataclass(frozen=True, slots=True)
class App:
    """What the entrypoints (and the tests) need from a started web service."""

    settings: Settings
    sign_up: SignUp
    order_watch: OrderWatch
    console: ConsoleFeed
    dead_letters: DeadLetters
    chaos: ChaosSwitches
    traces: TraceBook


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    accounts: Accounts | None = None,
    orders: OrderReader | None = None,
    metrics: MetricsSource | None = None,
    dead_letters: DeadLetters | None = None,
    chaos: ChaosSwitches | None = None,
    registry: Registry | None = None,
) -> AsyncIterator[App]:
    """Start the web service, yield its App, stop it on exit (see the module docstring)."""
    async with AsyncExitStack() as stack:
        # First in, last out: the spans of the whole stop are flushed (shop_common.observability).
        tracing = configure_tracing(settings.service_name, settings)
        stack.push_async_callback(tracing.aclose)
        if accounts is None or orders is None:
            client = GatewayClient(
                settings.gateway_url,
                timeout=settings.gateway_timeout_seconds,
                account_email=settings.signup_account_email,
                account_password=settings.signup_account_password,
            )
            stack.push_async_callback(client.close)
            accounts = accounts or client
            orders = orders or client
        watch = OrderWatch(
            orders,
            interval=settings.order_poll_interval_seconds,
            max_seconds=settings.stream_max_seconds,
        )

        if registry is None:
            registry = _registry_from_settings(settings)
            stack.push_async_callback(registry.close)
        if metrics is None:
            scraper = MetricsScraper(
                registry, CONSOLE_SERVICES, timeout=settings.console_scrape_timeout_seconds
            )
            stack.push_async_callback(scraper.close)
            metrics = scraper
        traces = TraceBook()
        console = ConsoleFeed(
            metrics, interval=settings.console_interval_seconds, trace=traces.last_order
        )
        stack.push_async_callback(console.stop)
        if dead_letters is None:
            broker = BrokerDeadLetters(settings.amqp_url, name=settings.service_name)
            stack.push_async_callback(broker.close)
            dead_letters = broker
        if chaos is None:
            switches = ChaosClient(registry, timeout=settings.console_scrape_timeout_seconds)
            stack.push_async_callback(switches.close)
            chaos = switches
        await stack.enter_async_context(
            ServiceRegistration(
                registry,
                local_instance(settings.service_name, settings.host, settings.http_port),
                HealthCheck.http("/ready"),
            )
        )
        log.info("web_service_started", port=settings.http_port)
        try:
            yield App(settings, SignUp(accounts), watch, console, dead_letters, chaos, traces)
        finally:
            log.info("web_service_stopping")
    log.info("web_service_stopped")
