"""Gateway settings, read from the environment (shop_common.settings pattern)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import NoDecode
from shop_common.settings import ServiceSettings
from starlette.types import Scope

from gateway.domain.bounds import (
    BODY_IDLE_SECONDS,
    BODY_TOTAL_SECONDS,
    MAX_HEADER_BYTES,
    MAX_HEADER_FIELDS,
    MAX_TARGET_BYTES,
)
from gateway.domain.forwarding import (
    ClientAddress,
    ForwardedHeader,
    IPNetwork,
    client_address,
    parse_address,
    parse_networks,
)

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
    catalog_service_addresses: str = "127.0.0.1:8003"
    web_service_addresses: str = "127.0.0.1:8004"
    jwt_private_key: str | None = None
    jwt_kid: str | None = None
    token_ttl_seconds: int = Field(default=900, gt=0)
    max_body_bytes: int = 1_048_576
    # Request bounds (gateway.entrypoints.bounds): target → 414, header fields → 431, a trickling body → 408.
    max_target_bytes: int = Field(default=MAX_TARGET_BYTES, gt=0)
    max_header_fields: int = Field(default=MAX_HEADER_FIELDS, gt=0)
    max_header_bytes: int = Field(default=MAX_HEADER_BYTES, gt=0)
    body_idle_seconds: float = Field(default=BODY_IDLE_SECONDS, gt=0)
    body_total_seconds: float = Field(default=BODY_TOTAL_SECONDS, gt=0)
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
    # Consume gateway.user-changes and gateway.catalog-changes to evict cached responses.
    cache_events_enabled: bool = True
    register_in_discovery: bool = True
    # Where clients reach the gateway (e.g. https://shop.example.com). The gateway's absolute
    # URLs (a backend's Location rewritten) start with it; without it they are path-absolute.
    # Never taken from the request's Host header.
    public_base_url: AnyHttpUrl | None = None
    rate_limit_prefix: str = "gw:rl:"
    cache_prefix: str = "gw:rc:"

    # Proxies in front of the gateway whose forwarding headers are believed (gateway.domain.forwarding).
    # TRUSTED_PROXIES="10.0.0.0/8,192.0.2.7" (or a JSON list). Empty: the gateway is the edge,
    # and the TCP peer is the client whatever X-Forwarded-For or Forwarded say.
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    # Which header those proxies write: X-Forwarded-For (nginx, most load balancers) or RFC 7239
    # Forwarded. Only one is read, so a client cannot add the other behind a proxy's back.
    forwarded_header: ForwardedHeader = "x-forwarded-for"

    # POST /auth/token throttling (gateway.adapters.login_throttle). Failed logins are counted in Redis
    # per account (the normalised username) and per client address. The first
    # login_account_free_failures failures of an account cost nothing; each later attempt that
    # is let through closes the account for base * 2**k seconds (1, 2, 4, ... capped), and a
    # success reopens it. A client has a larger budget of failures (any accounts) with the same
    # backoff. Counters forget after their window of quiet. Redis down: fail open to a per-process
    # throttle with the same numbers (see docs in gateway.adapters.login_throttle).
    login_throttle_enabled: bool = True
    login_throttle_prefix: str = "gw:lt:"
    login_account_free_failures: int = Field(default=5, ge=0)
    login_account_window_seconds: float = Field(default=900.0, gt=0)
    login_client_free_failures: int = Field(default=100, ge=0)
    login_client_window_seconds: float = Field(default=900.0, gt=0)
    login_backoff_base_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=300.0, gt=0)
    login_local_fallback_entries: int = Field(default=10_000, gt=0)

    @field_validator("trusted_proxies", "metrics_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_networks(value)
        return value

    # Who may read the gateway's own /metrics (the resolved client address, see above): the
    # networks operators and Prometheus scrape from. Everyone else gets 404. The default is
    # loopback and the private ranges (a compose network, a cluster, the local machine).
    metrics_networks: Annotated[tuple[IPNetwork, ...], NoDecode] = parse_networks(
        ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
    )

    def is_operator(self, scope: Scope) -> bool:
        """True when the request's client is in METRICS_NETWORKS."""
        address = parse_address(self.client_address(scope).address)
        return address is not None and any(address in n for n in self.metrics_networks)

    def client_address(self, scope: Scope) -> ClientAddress:
        """The request's client under these trusted proxies (gateway.domain.forwarding.client_address)."""
        return client_address(scope, self)
