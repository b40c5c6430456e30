"""Service discovery: a Registry (Consul or static), client-side balancing, registration.

`registry_from_settings(settings)` picks Consul when CONSUL_HTTP_ADDR is set, else the static
lists from `<SERVICE>_ADDRESSES`. Callers `await registry.watch("user-service")` once at start,
then balance over `registry.instances(...)`, which never touches the network.
"""

from __future__ import annotations

from shop_common.discovery.balancing import (
    InstanceBreakers,
    LoadBalancer,
    PowerOfTwoChoicesBalancer,
    RoundRobinBalancer,
    instance_breaker_name,
)
from shop_common.discovery.base import (
    DiscoveryError,
    HealthCheck,
    InstancesListener,
    NoAvailableInstanceError,
    Registry,
    RegistryUnavailableError,
    ServiceInstance,
    ServiceNotWatchedError,
    advertised_host,
    new_instance_id,
    parse_addresses,
)
from shop_common.discovery.consul import ConsulRegistry
from shop_common.discovery.registration import ServiceRegistration, local_instance
from shop_common.discovery.static import StaticRegistry, service_name_of
from shop_common.settings import ServiceSettings

__all__ = (
    "ConsulRegistry",
    "DiscoveryError",
    "HealthCheck",
    "InstanceBreakers",
    "InstancesListener",
    "LoadBalancer",
    "NoAvailableInstanceError",
    "PowerOfTwoChoicesBalancer",
    "Registry",
    "RegistryUnavailableError",
    "RoundRobinBalancer",
    "ServiceInstance",
    "ServiceNotWatchedError",
    "ServiceRegistration",
    "StaticRegistry",
    "advertised_host",
    "instance_breaker_name",
    "local_instance",
    "new_instance_id",
    "parse_addresses",
    "registry_from_settings",
    "service_name_of",
)


def registry_from_settings(settings: ServiceSettings) -> Registry:
    """ConsulRegistry when CONSUL_HTTP_ADDR is set, else StaticRegistry from *_ADDRESSES."""
    if settings.consul_http_addr:
        return ConsulRegistry(settings.consul_http_addr)
    return StaticRegistry.from_settings(settings)
