"""The one settings pattern: each service subclasses ServiceSettings (pydantic-settings).

Defaults work on a machine where PostgreSQL, Redis and RabbitMQ run on their standard
localhost ports; every field is read from the environment by its upper-case name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev-only"})


def refuse_development_secret(
    environment: str, name: str, value: str, development_value: str
) -> None:
    """Raise ValueError when a secret is its development default or a placeholder while
    `environment` is anything but "development" (test and production alike).

    Each service calls it from a model validator for every secret it ships a default for, so a
    deployment that forgot to set one stops at start-up instead of signing with a public value.
    """
    if environment != "development" and (
        value in PLACEHOLDER_SECRETS or value == development_value
    ):
        raise ValueError(
            f"{name} must be set to a secret of this deployment outside development "
            f"(ENVIRONMENT={environment}); the development default is public"
        )


class ServiceSettings(BaseSettings):
    """Settings every service shares; subclasses add their own and set SERVICE_NAME."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # True: REDIS_URL names one node of a Redis Cluster (examples/caching: redis_from_settings;
    # no service reads it yet: the order service opens a single Redis).
    redis_cluster: bool = False
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    consul_http_addr: str | None = None

    # Tracing (shop_common.observability): the standard OpenTelemetry variables. No endpoint,
    # or OTEL_SDK_DISABLED=true: tracing is off and costs nothing.
    otel_exporter_otlp_endpoint: str | None = None
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = "parentbased_traceidratio"
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0.0, le=1.0)
    otel_sdk_disabled: bool = False

    jwt_issuer: str = "shop-gateway"
    jwt_audience: str = "shop"
    # JSON object {kid: PEM public key}; the gateway publishes the same keys at its JWKS URL.
    jwt_public_keys: dict[str, str] = Field(default_factory=dict)
    jwt_leeway_seconds: int = 10

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> ServiceSettings:
        if self.environment == "production" and not self.jwt_public_keys:
            raise ValueError("JWT_PUBLIC_KEYS must be set in production")
        return self
