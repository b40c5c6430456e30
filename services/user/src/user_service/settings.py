"""Settings of the user service (environment variables, upper-case names)."""

from __future__ import annotations

import os

from pydantic import Field, model_validator
from shop_common.settings import ServiceSettings, refuse_development_secret

DEV_PAGE_TOKEN_SECRET = "dev-only-page-token-secret"


def default_hash_concurrency() -> int:
    """One password hash at a time per CPU (password_hash_concurrency's default)."""
    return max(1, os.cpu_count() or 1)


class Settings(ServiceSettings):
    """The user service's settings: gRPC address, pool, limits and secrets."""

    service_name: str = "user-service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/users"
    host: str = "127.0.0.1"
    grpc_port: int = 50051
    # Prometheus /metrics over plain HTTP on HOST:METRICS_PORT (the service speaks no HTTP
    # otherwise); 0 = not served. Every deployment sets it (the launcher 9101/9102, compose 9101).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # How often the outbox lag (shop_outbox_lag_seconds, shop_outbox_pending) is sampled.
    metrics_interval_seconds: float = Field(default=15.0, gt=0)

    # argon2id hashes (logins, sign-ups, password changes) run at once per process, each holding
    # 64 MiB while it runs: a container's memory limit bounds it (compose and Kubernetes set 1
    # for a 160 MiB instance of ~80 MiB at rest). Default: the number of CPUs.
    password_hash_concurrency: int = Field(default_factory=default_hash_concurrency, ge=1, le=64)

    db_pool_size: int = 20
    db_max_overflow: int = 10
    db_read_pool_size: int = 20
    # GetUser reads arriving while this many `id = ANY($1)` queries run wait and share the next
    # one (adapters/coalescing.py); 0 = one query per call.
    get_user_coalesce_queries: int = Field(default=1, ge=0, le=20)
    db_statement_timeout_ms: int = 5000
    # Signs ListUsers page tokens (HMAC-SHA256); must be the same on every instance.
    page_token_secret: str = DEV_PAGE_TOKEN_SECRET
    # Verified tokens are cached this long (keyed by the token string) to keep RSA off the hot path.
    token_cache_seconds: float = 30.0
    rate_limit_per_second: float = 500.0
    rate_limit_burst: int = 1000
    health_check_interval: float = 1.0
    health_check_timeout: float = 1.0
    grace_period: float = 5.0
    max_message_bytes: int = 4 * 1024 * 1024
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
    max_concurrent_streams: int = 1000
    # Discovery (Consul when CONSUL_HTTP_ADDR is set): probe interval, heartbeat TTL, and how long
    # a critical instance stays registered (Consul's minimum is 60 s).
    registration_check_interval: float = 5.0
    registration_ttl: float = 15.0
    registration_deregister_critical_after: float = 60.0
    apply_migrations_on_start: bool = True
    # Publish the outbox (user.* events) to RabbitMQ's `users` exchange from this process.
    outbox_relay_enabled: bool = True

    @model_validator(mode="after")
    def _refuse_dev_page_secret_outside_development(self) -> Settings:
        refuse_development_secret(
            self.environment, "PAGE_TOKEN_SECRET", self.page_token_secret, DEV_PAGE_TOKEN_SECRET
        )
        return self
