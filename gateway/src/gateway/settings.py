"""Gateway settings, read from the environment (shop_common.settings pattern)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field
from shop_common.settings import ServiceSettings

DEFAULT_ROUTES_FILE = Path(__file__).with_name("routes.yaml")


class Settings(ServiceSettings):
    """Gateway-specific settings on top of ServiceSettings.

    Keys: JWT_PRIVATE_KEY + JWT_KID sign new tokens; JWT_PUBLIC_KEYS ({kid: PEM}) holds every key
    still trusted (the previous ones during a rotation). The JWKS publishes the union of both.
    """

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    http_port: int = 8000
    routes_file: Path = DEFAULT_ROUTES_FILE
    user_service_addresses: str = "127.0.0.1:50051,127.0.0.1:50052"
    order_service_addresses: str = "127.0.0.1:8001"
    payment_service_addresses: str = "127.0.0.1:8002"
    jwt_private_key: str | None = None
    jwt_kid: str | None = None
    token_ttl_seconds: int = Field(default=900, gt=0)
    max_body_bytes: int = 1_048_576
    balancer: Literal["round_robin", "p2c"] = "round_robin"
    upstream_pool_size: int = Field(default=256, gt=0)
    redis_max_connections: int = Field(default=64, gt=0)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    # Breakers: per instance (outlier ejection) and per service (every instance failing).
    instance_breaker_failures: int = Field(default=3, gt=0)
    service_breaker_failures: int = Field(default=10, gt=0)
    breaker_recovery_seconds: float = Field(default=5.0, gt=0)
    user_call_timeout_seconds: float = Field(default=2.0, gt=0)
    retry_initial_backoff_seconds: float = Field(default=0.02, ge=0)
    user_events_enabled: bool = True
    register_in_discovery: bool = True
    # Where clients reach the gateway (e.g. https://shop.example.com). The gateway's absolute
    # URLs (a backend's Location rewritten) start with it; without it they are path-absolute.
    # Never taken from the request's Host header.
    public_base_url: AnyHttpUrl | None = None
    rate_limit_prefix: str = "gw:rl:"
    cache_prefix: str = "gw:rc:"
