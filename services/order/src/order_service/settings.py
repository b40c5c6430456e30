"""Settings: the one pydantic-settings class of the order service (environment variables,
upper-case names)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, model_validator
from shop_common.messaging.topology import DEFAULT_RETRY_DELAYS_MS
from shop_common.settings import ServiceSettings, refuse_development_secret

DEV_PAGE_TOKEN_SECRET = "dev-only-order-page-token-secret"


class Settings(ServiceSettings):
    """The order service's settings: HTTP address, user lookup, saga timeout, messaging."""

    service_name: str = "order-service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/orders"
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=5, ge=0)
    host: str = "127.0.0.1"
    http_port: int = 8001
    max_body_bytes: int = Field(default=65_536, ge=1)
    apply_migrations_on_start: bool = True

    # User lookup (gRPC, round robin over the list) behind breaker, retry, deadline and cache.
    user_service_addresses: str = "127.0.0.1:50051,127.0.0.1:50052"
    user_lookup_deadline_seconds: float = Field(default=1.5, gt=0)
    user_lookup_attempt_timeout_seconds: float = Field(default=0.5, gt=0)
    user_lookup_attempts: int = Field(default=2, ge=1)
    user_breaker_failures: int = Field(default=5, ge=1)
    user_breaker_recovery_seconds: float = Field(default=10.0, gt=0)
    user_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    user_cache_negative_ttl_seconds: float = Field(default=10.0, gt=0)
    user_cache_l1_ttl_seconds: float = Field(default=30.0, gt=0)
    user_cache_l1_size: int = Field(default=10_000, ge=1)
    # Refresh-ahead: a cached user read after this fraction of its TTL is reloaded in the
    # background (the cached record answers meanwhile), so hot users never wait on a reload.
    user_cache_refresh_ahead: bool = True
    user_cache_refresh_after: float = Field(default=0.75, gt=0, lt=1)
    # Redis keys and the coherence channel of the user cache live under this prefix; unset,
    # it is derived from the database name, so deployments sharing one Redis never mix users.
    user_cache_namespace: str | None = Field(default=None, pattern=r"^[^{}]+$")
    redis_max_connections: int = Field(default=50, ge=1)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    # Retry-After (seconds) when the user service cannot answer and the breaker gives no hint.
    user_unavailable_retry_after_seconds: int = Field(default=2, ge=1)

    # Price lookup: the catalog's HTTP API (round robin over the list) behind breaker, retry,
    # deadline and a two-level cache (L1 in process, L2 Redis) with refresh-ahead, evicted on
    # product.price_changed. The L1 TTL bounds how long a missed eviction can last.
    catalog_service_addresses: str = "127.0.0.1:8003"
    catalog_lookup_deadline_seconds: float = Field(default=1.5, gt=0)
    catalog_lookup_attempt_timeout_seconds: float = Field(default=0.5, gt=0)
    catalog_lookup_attempts: int = Field(default=2, ge=1)
    catalog_breaker_failures: int = Field(default=5, ge=1)
    catalog_breaker_recovery_seconds: float = Field(default=10.0, gt=0)
    price_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    price_cache_negative_ttl_seconds: float = Field(default=10.0, gt=0)
    price_cache_l1_ttl_seconds: float = Field(default=30.0, gt=0)
    price_cache_l1_size: int = Field(default=10_000, ge=1)
    price_cache_refresh_after: float = Field(default=0.75, gt=0, lt=1)
    catalog_unavailable_retry_after_seconds: int = Field(default=2, ge=1)

    # A PENDING order with no payment result after this long is failed and compensated.
    saga_timeout_seconds: float = Field(default=300.0, gt=0)
    saga_sweep_interval_seconds: float = Field(default=5.0, gt=0)

    consumer_prefetch: int = Field(default=64, ge=1)
    consumer_concurrency: int = Field(default=32, ge=1)
    consumer_max_attempts: int = Field(default=5, ge=1)
    # payment.succeeded is applied in batches of up to this many, gathered for at most this
    # long after the first (shop_common.messaging.batch).
    consumer_batch_size: int = Field(default=32, ge=1, le=500)
    consumer_batch_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # Delay tiers of the work queues (JSON list in the environment, e.g. RETRY_DELAYS_MS=[100,200]).
    # Every process declaring the queues must agree: RabbitMQ refuses a re-declare with another TTL.
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    broker_metrics_interval_seconds: float = Field(default=15.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    # Signs the opaque page tokens of GET /orders (a tampered token is a 400, not a scan).
    page_token_secret: str = DEV_PAGE_TOKEN_SECRET
    page_size_default: int = Field(default=20, ge=1)
    page_size_max: int = Field(default=100, ge=1)

    @property
    def cache_namespace(self) -> str:
        """USER_CACHE_NAMESPACE, or `order-service:<database>:users`."""
        if self.user_cache_namespace:
            return self.user_cache_namespace
        database = urlsplit(self.database_url).path.strip("/") or "orders"
        return f"order-service:{database.replace('{', '').replace('}', '')}:users"

    @property
    def price_cache_namespace(self) -> str:
        """The price cache's Redis prefix: the user cache's, with `prices` for `users`."""
        return self.cache_namespace.removesuffix(":users") + ":prices"

    @model_validator(mode="after")
    def _refuse_dev_page_secret_outside_development(self) -> Settings:
        refuse_development_secret(
            self.environment, "PAGE_TOKEN_SECRET", self.page_token_secret, DEV_PAGE_TOKEN_SECRET
        )
        return self
