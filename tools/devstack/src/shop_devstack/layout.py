"""What the local system is made of: each process, its port, database and environment.

The ports, entry points and environment keys are the ones fixed in notes/contracts.md
("Process layout"); docker-compose.yml uses the same keys, and tests/consistency checks both
against each service's Settings class.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Probe = Literal["grpc", "http"]

REPO_ROOT = Path(__file__).resolve().parents[4]


# The launcher's admin account (created by shop_devstack.accounts; the web service's sign-up
# logs in with it). Development only: the local system.
ADMIN_EMAIL = "admin@shop.example"
ADMIN_PASSWORD = "admin-password-dev"
# The web service's sign-up account: role `registrar` only (it creates shopper accounts).
SIGNUP_EMAIL = "signup@shop.example"
SIGNUP_PASSWORD = "signup-password-dev"


@dataclass(frozen=True)
class ProcessSpec:
    """One application process the launcher starts and supervises."""

    name: str
    package: str
    port: int
    probe: Probe
    database: str
    env: Mapping[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()  # overrides the entry point (the launcher's own tests use it)
    migrate_argv: tuple[str, ...] = ()  # overrides the migrate entry point likewise
    # Where Prometheus scrapes its /metrics: an HTTP service's own port, a user replica's
    # METRICS_PORT (0: not served).
    metrics_port: int = 0

    @property
    def command(self) -> list[str]:
        """The contract's entry point, run with this interpreter (the workspace venv)."""
        return list(self.argv) if self.argv else [sys.executable, "-m", self.package]

    @property
    def migrate_command(self) -> list[str]:
        """The contract's migrate-only entry point."""
        if self.migrate_argv:
            return list(self.migrate_argv)
        return [sys.executable, "-m", "shop_common.migrations", self.package]

    @property
    def address(self) -> str:
        """host:port this process listens on."""
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Ports:
    """Where each process listens (contracts.md: gateway 8000, order 8001, payment 8002,
    catalog 8003, web 8004, user 50051/2, and the user replicas' /metrics 9101/2)."""

    gateway: int = 8000
    order: int = 8001
    payment: int = 8002
    user: tuple[int, int] = (50051, 50052)
    user_metrics: tuple[int, int] = (9101, 9102)
    prometheus: int = 9090  # started beside the processes when installed
    catalog: int = 8003
    web: int = 8004

    def offset(self, by: int) -> Ports:
        """Every port moved by `by` (a second system beside the first)."""
        return Ports(
            self.gateway + by,
            self.order + by,
            self.payment + by,
            (self.user[0] + by, self.user[1] + by),
            (self.user_metrics[0] + by, self.user_metrics[1] + by),
            self.prometheus + by,
            self.catalog + by,
            self.web + by,
        )

    def all(self) -> list[int]:
        """Every port of the system (to find an offset where all are free)."""
        return [
            self.gateway,
            self.order,
            self.payment,
            self.catalog,
            self.web,
            *self.user,
            *self.user_metrics,
            self.prometheus,
        ]


@dataclass(frozen=True)
class StackConfig:
    """Everything that differs between `make up` and a test run of the same system."""

    run_dir: Path = REPO_ROOT / "run"
    ports: Ports = field(default_factory=Ports)
    postgres_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    consul_http_addr: str | None = None
    database_prefix: str = ""
    log_level: str = "INFO"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    fault_proxies: bool = False  # put cut-able TCP proxies in front of Redis and RabbitMQ
    prometheus: bool = True  # start Prometheus too, when the binary is installed

    def database_name(self, base: str) -> str:
        """The database a service uses (users, orders, payments, catalog; prefixed for test runs)."""
        return f"{self.database_prefix}{base}"

    def database_url(self, base: str) -> str:
        """SQLAlchemy asyncpg URL of a service's database."""
        parts = urlsplit(self.postgres_admin_url)
        scheme = "postgresql+asyncpg"
        return urlunsplit(parts._replace(scheme=scheme, path=f"/{self.database_name(base)}"))

    def with_consul(self, addr: str | None) -> StackConfig:
        """The same config with Consul discovery on (addr) or off (None)."""
        return replace(self, consul_http_addr=addr)

    @property
    def gateway_url(self) -> str:
        """The one front door."""
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def state_file(self) -> Path:
        """JSON written by a running launcher: its pid, processes, URLs, control socket."""
        return self.run_dir / "devstack.json"

    @property
    def control_socket(self) -> Path:
        """Unix socket on which a running launcher accepts stop/start/kill commands."""
        return self.run_dir / "devstack.sock"

    @property
    def log_dir(self) -> Path:
        """One log file per process."""
        return self.run_dir / "logs"


@dataclass(frozen=True)
class DevKeys:
    """The development RSA key pair the gateway signs with and every service trusts."""

    kid: str
    private_pem: str
    public_pem: str

    @property
    def public_keys_json(self) -> str:
        """JWT_PUBLIC_KEYS as the services read it: {kid: PEM}."""
        return json.dumps({self.kid: self.public_pem})


def _common_env(config: StackConfig, keys: DevKeys, database: str | None) -> dict[str, str]:
    env = {
        "REDIS_URL": config.redis_url,
        "AMQP_URL": config.amqp_url,
        "JWT_PUBLIC_KEYS": keys.public_keys_json,
        "LOG_LEVEL": config.log_level,
        "ENVIRONMENT": "development",
    }
    if database:
        env["DATABASE_URL"] = config.database_url(database)
    if config.consul_http_addr:
        env["CONSUL_HTTP_ADDR"] = config.consul_http_addr
    return env


def build_processes(config: StackConfig, keys: DevKeys) -> list[ProcessSpec]:
    """The application processes in start order: two user instances, catalog, payment, order,
    web, gateway (stopped in reverse: the gateway first, so nothing routes to a stopped service)."""
    ports = config.ports
    user_addresses = ",".join(f"127.0.0.1:{port}" for port in ports.user)
    processes = [
        ProcessSpec(
            f"user-{index}",
            "user_service",
            port,
            "grpc",
            "users",
            {
                **_common_env(config, keys, "users"),
                "HOST": "127.0.0.1",
                "GRPC_PORT": str(port),
                "METRICS_PORT": str(metrics_port),
            },
            metrics_port=metrics_port,
        )
        for index, (port, metrics_port) in enumerate(
            zip(ports.user, ports.user_metrics, strict=True), start=1
        )
    ]
    processes.append(
        ProcessSpec(
            "catalog",
            "catalog_service",
            ports.catalog,
            "http",
            "catalog",
            {**_common_env(config, keys, "catalog"), "HTTP_PORT": str(ports.catalog)},
            metrics_port=ports.catalog,
        )
    )
    processes.append(
        ProcessSpec(
            "payment",
            "payment_service",
            ports.payment,
            "http",
            "payments",
            {**_common_env(config, keys, "payments"), "HTTP_PORT": str(ports.payment)},
            metrics_port=ports.payment,
        )
    )
    processes.append(
        ProcessSpec(
            "order",
            "order_service",
            ports.order,
            "http",
            "orders",
            {
                **_common_env(config, keys, "orders"),
                "HTTP_PORT": str(ports.order),
                "USER_SERVICE_ADDRESSES": user_addresses,
                # Prices come from the catalog (the shop decides them, not the client).
                "CATALOG_SERVICE_ADDRESSES": f"127.0.0.1:{ports.catalog}",
            },
            metrics_port=ports.order,
        )
    )
    processes.append(
        ProcessSpec(
            "web",
            "web_service",
            ports.web,
            "http",
            "",
            {
                **_common_env(config, keys, None),
                "HTTP_PORT": str(ports.web),
                "GATEWAY_URL": f"http://127.0.0.1:{ports.gateway}",
                # Sign-up creates accounts as the launcher's admin (shop_devstack.accounts).
                "SIGNUP_ACCOUNT_EMAIL": SIGNUP_EMAIL,
                "SIGNUP_ACCOUNT_PASSWORD": SIGNUP_PASSWORD,
                # The console scrapes every instance's /metrics.
                "GATEWAY_ADDRESSES": f"127.0.0.1:{ports.gateway}",
                "WEB_SERVICE_ADDRESSES": f"127.0.0.1:{ports.web}",
                "ORDER_SERVICE_ADDRESSES": f"127.0.0.1:{ports.order}",
                "PAYMENT_SERVICE_ADDRESSES": f"127.0.0.1:{ports.payment}",
                "CATALOG_SERVICE_ADDRESSES": f"127.0.0.1:{ports.catalog}",
                "USER_SERVICE_METRICS_ADDRESSES": ",".join(
                    f"127.0.0.1:{port}" for port in ports.user_metrics
                ),
            },
            metrics_port=ports.web,
        )
    )
    processes.append(
        ProcessSpec(
            "gateway",
            "gateway",
            ports.gateway,
            "http",
            "",
            {
                **_common_env(config, keys, None),
                "HTTP_PORT": str(ports.gateway),
                "USER_SERVICE_ADDRESSES": user_addresses,
                "ORDER_SERVICE_ADDRESSES": f"127.0.0.1:{ports.order}",
                "PAYMENT_SERVICE_ADDRESSES": f"127.0.0.1:{ports.payment}",
                "CATALOG_SERVICE_ADDRESSES": f"127.0.0.1:{ports.catalog}",
                "WEB_SERVICE_ADDRESSES": f"127.0.0.1:{ports.web}",
                "JWT_PRIVATE_KEY": keys.private_pem,
                "JWT_KID": keys.kid,
                # CreateUser and Authenticate hash with argon2id: 1-2 s on a busy 2-core laptop,
                # past the 2 s default, and each timeout counts against the user-service breaker.
                "USER_CALL_TIMEOUT_SECONDS": "5",
            },
            metrics_port=ports.gateway,
        )
    )
    if config.extra_env:
        processes = [replace(p, env={**p.env, **config.extra_env}) for p in processes]
    return processes


def traces_url(config: StackConfig) -> str | None:
    """Where the services send their traces (the OTLP/HTTP traces URL their SDK derives from the
    environment they get: the launcher's own plus --set), or None when they export none."""
    env = {**os.environ, **config.extra_env}
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else None
