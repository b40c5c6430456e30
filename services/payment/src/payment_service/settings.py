"""Settings of the payment service (environment variables, upper-case names)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from shop_common.messaging.topology import DEFAULT_RETRY_DELAYS_MS
from shop_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """The payment service's settings: HTTP address, consumer, breaker and provider faults."""

    service_name: str = "payment-service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments"
    host: str = "127.0.0.1"
    http_port: int = 8002
    database_pool_size: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=1)
    apply_migrations_on_start: bool = True

    # The consumer of payment.order-events: unacked messages held, handled at once, attempts.
    consumer_prefetch: int = Field(default=32, ge=1)
    consumer_concurrency: int = Field(default=16, ge=1)
    consumer_max_attempts: int = Field(default=6, ge=1)
    # Delay tiers of the work queue (JSON list in the environment, e.g. RETRY_DELAYS_MS=[100,200]).
    # Every process declaring the queue must agree: RabbitMQ refuses a re-declare with another TTL.
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Queue depths (DLQ) and outbox lag are sampled this often for /metrics.
    broker_metrics_interval_seconds: float = Field(default=15.0, gt=0)
    # Seconds uvicorn waits for in-flight requests before the lifespan shutdown drains messages.
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    # The breaker around the provider: consecutive failures that open it, seconds before a trial.
    breaker_consecutive_failures: int = Field(default=5, ge=1)
    breaker_recovery_seconds: float = Field(default=5.0, gt=0)

    provider_latency_ms: float = Field(default=5.0, ge=0)
    provider_transient_failure_rate: float = Field(default=0.0, ge=0, le=1)
    # Charges above this amount are declined (a decline rule, not a fault).
    provider_decline_above: Decimal = Decimal("10000.00")
    provider_down: bool = False
