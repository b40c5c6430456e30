"""Settings of the payment service (environment variables, upper-case names)."""

from __future__ import annotations

from decimal import Decimal

from shop_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """The payment service's settings: HTTP address and the simulated provider's faults."""

    service_name: str = "payment-service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments"
    host: str = "127.0.0.1"
    http_port: int = 8002
    provider_latency_ms: float = 5.0
    provider_transient_failure_rate: float = 0.0
    # Charges above this amount are declined (a decline rule, not a fault).
    provider_decline_above: Decimal = Decimal("10000.00")
    provider_down: bool = False
    apply_migrations_on_start: bool = True
