"""Settings of the order service (environment variables, upper-case names)."""

from __future__ import annotations

from shop_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """The order service's settings: HTTP address, user lookup, saga timeout."""

    service_name: str = "order-service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/orders"
    host: str = "127.0.0.1"
    http_port: int = 8001
    user_service_addresses: str = "127.0.0.1:50051,127.0.0.1:50052"
    # A PENDING order with no payment result after this long is failed and compensated.
    saga_timeout_seconds: float = 300.0
    saga_sweep_interval_seconds: float = 5.0
    user_cache_ttl_seconds: float = 300.0
    apply_migrations_on_start: bool = True
