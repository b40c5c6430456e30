"""Settings of the catalog service (environment variables, upper-case names)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, model_validator
from shop_common.messaging.topology import DEFAULT_RETRY_DELAYS_MS
from shop_common.settings import ServiceSettings, refuse_development_secret

DEV_PAGE_TOKEN_SECRET = "dev-only-catalog-page-token-secret"


class Settings(ServiceSettings):
    """The catalog service's settings: HTTP address, product cache, view counters, reservations."""

    service_name: str = "catalog-service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/catalog"
    host: str = "127.0.0.1"
    http_port: int = 8003
    database_pool_size: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=16_384, ge=1)
    apply_migrations_on_start: bool = True
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # The consumer of catalog.order-events (the saga's stock side): unacked messages held,
    # handled at once, attempts before the DLQ.
    consumer_prefetch: int = Field(default=64, ge=1)
    consumer_concurrency: int = Field(default=32, ge=1)
    consumer_max_attempts: int = Field(default=5, ge=1)
    # order.created and order.paid are settled in batches of up to this many, gathered for at
    # most this long after the first (shop_common.messaging.batch).
    consumer_batch_size: int = Field(default=32, ge=1, le=500)
    consumer_batch_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # Delay tiers of the work queues (JSON list in the environment, e.g. RETRY_DELAYS_MS=[100,200]).
    # Every process declaring the queues must agree: RabbitMQ refuses a re-declare with another TTL.
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    broker_metrics_interval_seconds: float = Field(default=15.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    # GET /products: signed keyset page tokens and page sizes.
    page_token_secret: str = DEV_PAGE_TOKEN_SECRET
    page_size_default: int = Field(default=20, ge=1)
    page_size_max: int = Field(default=100, ge=1)

    # The product cache (L1 in process, L2 in Redis, L1 coherence over pub/sub).
    product_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    product_cache_negative_ttl_seconds: float = Field(default=10.0, gt=0)
    product_cache_l1_ttl_seconds: float = Field(default=30.0, gt=0)
    product_cache_l1_size: int = Field(default=10_000, ge=1)
    # A cached product read after this fraction of its TTL is reloaded in the background.
    product_cache_refresh_after: float = Field(default=0.75, gt=0, lt=1)
    # Redis keys and the coherence channel live under this prefix; unset, derived from the database.
    product_cache_namespace: str | None = Field(default=None, pattern=r"^[^{}]+$")
    redis_max_connections: int = Field(default=50, ge=1)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)

    # Product view counters: counted in memory, written behind to PostgreSQL in batches.
    view_flush_interval_seconds: float = Field(default=2.0, gt=0)
    view_flush_batch: int = Field(default=200, ge=1)

    # A stock reservation not confirmed within this many seconds is released by the sweeper.
    reservation_ttl_seconds: float = Field(default=900.0, gt=0)
    reservation_sweep_interval_seconds: float = Field(default=5.0, gt=0)

    @property
    def cache_namespace(self) -> str:
        """PRODUCT_CACHE_NAMESPACE, or `catalog-service:<database>:products`."""
        if self.product_cache_namespace:
            return self.product_cache_namespace
        database = urlsplit(self.database_url).path.strip("/") or "catalog"
        return f"catalog-service:{database.replace('{', '').replace('}', '')}:products"

    @model_validator(mode="after")
    def _refuse_dev_page_secret_outside_development(self) -> Settings:
        refuse_development_secret(
            self.environment, "PAGE_TOKEN_SECRET", self.page_token_secret, DEV_PAGE_TOKEN_SECRET
        )
        return self
