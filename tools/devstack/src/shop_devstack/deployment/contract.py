"""What every deployment of the system must agree on, whatever runs it (compose, Kubernetes).

The ports each service listens on, where its /metrics are, the migrate entry point, what the
image's key wrapper exports, and what each service uses (its database, Redis, RabbitMQ, the
services it calls), derived from the code and the Settings classes rather than written down
twice. shop_devstack.deployment.compose and .kubernetes both check their files against it.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shop_common.discovery.static import service_name_of

from shop_devstack.deployment.settings_env import load_settings_class, settings_keys
from shop_devstack.layout import REPO_ROOT, Ports

MIGRATE_MODULE = "shop_common.migrations"  # `python -m shop_common.migrations <package>`
APP_PACKAGES = (
    "user_service",
    "order_service",
    "payment_service",
    "catalog_service",
    "web_service",
    "gateway",
)
# What the key wrapper (deploy/docker/with-jwt-keys.sh) exports from the mounted key folders.
KEY_VOLUME_ENV = {
    "/jwt/public": ("JWT_PUBLIC_KEYS",),
    "/jwt/private": ("JWT_PRIVATE_KEY", "JWT_KID"),
}
KEY_WRAPPER = REPO_ROOT / "deploy" / "docker" / "with-jwt-keys.sh"
_PORTS = Ports()
CONTRACT_PORTS = {
    "user_service": ("GRPC_PORT", _PORTS.user[0]),
    "order_service": ("HTTP_PORT", _PORTS.order),
    "payment_service": ("HTTP_PORT", _PORTS.payment),
    "catalog_service": ("HTTP_PORT", _PORTS.catalog),
    "web_service": ("HTTP_PORT", _PORTS.web),
    "gateway": ("HTTP_PORT", _PORTS.gateway),
}
# A service that speaks no HTTP serves /metrics on a port of its own (each container has its
# own network namespace, so every user replica uses the first replica's port of the launcher).
METRICS_PORTS = {"user_service": ("METRICS_PORT", _PORTS.user_metrics[0])}
# The infrastructure a service opens when its code reads the URL setting (settings.<field>).
INFRASTRUCTURE = {"database_url": "postgres", "redis_url": "redis", "amqp_url": "rabbitmq"}
INFRASTRUCTURE_PORTS = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}
_READS = re.compile(r"\bsettings\.(database_url|redis_url|amqp_url)\b")
ADDRESSES = "_ADDRESSES"
METRICS = "-metrics"  # `<SERVICE>_METRICS_ADDRESSES`: that service's /metrics port


def service_name(package: str) -> str:
    """The service's name in discovery, metrics and deployments: order_service → order-service."""
    return package.replace("_", "-")


_SERVICES = {service_name(p): p for p in APP_PACKAGES}


def metrics_port(package: str) -> int:
    """Where Prometheus scrapes the service: its METRICS_PORT, else its HTTP port."""
    return METRICS_PORTS.get(package, CONTRACT_PORTS[package])[1]


@dataclass(frozen=True)
class Uses:
    """What a service connects to: infrastructure by name, upstream services by name → port."""

    infrastructure: frozenset[str]
    upstreams: dict[str, int]
    address_keys: frozenset[str] = frozenset()  # the settings naming where the upstreams are

    def url_keys(self) -> set[str]:
        """The settings naming where its infrastructure is (DATABASE_URL, ...)."""
        return {key.upper() for key, name in INFRASTRUCTURE.items() if name in self.infrastructure}


@cache
def uses(package: str) -> Uses:
    """Derived, not declared: the infrastructure whose URL setting the package's code reads, and
    one upstream per address-list setting of its Settings class (upstream_of)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package!r} is not an installed package")
    source = "\n".join(
        path.read_text()
        for folder in spec.submodule_search_locations
        for path in Path(folder).rglob("*.py")
    )
    infrastructure = frozenset(INFRASTRUCTURE[m] for m in _READS.findall(source))
    keys = settings_keys(load_settings_class(f"{package}.settings:Settings"))
    address_keys = {key for key in keys.accepted if upstream_of(key)}
    upstreams = dict(sorted(filter(None, (upstream_of(key) for key in address_keys))))
    return Uses(infrastructure, upstreams, frozenset(address_keys))


def upstream_of(key: str) -> tuple[str, int] | None:
    """The service and port an address-list setting names, None for any other setting:
    `<SERVICE>_ADDRESSES` of a service of APP_PACKAGES → its port (ORDER_SERVICE_ADDRESSES,
    GATEWAY_ADDRESSES), `<SERVICE>_METRICS_ADDRESSES` → its metrics port."""
    if not key.endswith(ADDRESSES):
        return None
    name = service_name_of(key)
    scraped = name.endswith(METRICS) and name.removesuffix(METRICS) in _SERVICES
    package = _SERVICES.get(name.removesuffix(METRICS) if scraped else name)
    if package is None:
        return None
    return (service_name(package), metrics_port(package) if scraped else CONTRACT_PORTS[package][1])


def callers_of(package: str) -> dict[str, int]:
    """The services whose Settings name this one as an upstream → the port they call."""
    name = service_name(package)
    return {
        service_name(p): uses(p).upstreams[name] for p in APP_PACKAGES if name in uses(p).upstreams
    }


def key_files(wrapper: Path = KEY_WRAPPER) -> dict[str, set[str]]:
    """Key folder → the files the images' key wrapper reads from it (with-jwt-keys.sh)."""
    found: dict[str, set[str]] = {}
    for folder, file in re.findall(r"(/jwt/\w+)/([\w.]+)", wrapper.read_text()):
        found.setdefault(folder, set()).add(file)
    return found
