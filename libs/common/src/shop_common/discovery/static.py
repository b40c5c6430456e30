"""Discovery from settings: fixed address lists, the default when no Consul is configured."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic_settings import BaseSettings

from shop_common.discovery.base import (
    HealthCheck,
    InstancesListener,
    ServiceInstance,
    parse_addresses,
)
from shop_common.logging import get_logger

_log = get_logger(__name__)
ADDRESSES_SUFFIX = "_addresses"


def service_name_of(setting: str) -> str:
    """The service a `<SERVICE>_ADDRESSES` setting names: user_service_addresses → user-service."""
    return setting.lower().removesuffix(ADDRESSES_SUFFIX).replace("_", "-")


class StaticRegistry:
    """A Registry over fixed lists; register/deregister only log (nothing to announce to)."""

    def __init__(self, addresses: Mapping[str, str | Sequence[str]] | None = None) -> None:
        self._instances: dict[str, list[ServiceInstance]] = {
            service: parse_addresses(service, value) for service, value in (addresses or {}).items()
        }
        self._listeners: list[InstancesListener] = []

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StaticRegistry:
        """One service per `<SERVICE>_ADDRESSES` field (USER_SERVICE_ADDRESSES → "user-service")."""
        addresses = {
            service_name_of(name): value
            for name, value in settings.model_dump().items()
            if name.endswith(ADDRESSES_SUFFIX) and isinstance(value, str | list | tuple)
        }
        return cls(addresses)

    async def register(self, instance: ServiceInstance, check: HealthCheck | None = None) -> None:
        """Nothing to announce: static lists are configured, not registered."""
        _log.debug("static_registry_register_noop", instance_id=instance.instance_id)

    async def deregister(self, instance_id: str) -> None:
        """Nothing to withdraw."""
        _log.debug("static_registry_deregister_noop", instance_id=instance_id)

    async def watch(self, *services: str) -> None:
        """Static lists are known up front; an unknown service has no instances."""
        for service in services:
            self._instances.setdefault(service, [])

    def instances(self, service: str) -> list[ServiceInstance]:
        """The configured instances (empty for a service with no addresses)."""
        return list(self._instances.get(service, ()))

    def set_instances(self, service: str, addresses: str | Sequence[str]) -> None:
        """Replace a service's list (operator reconfiguration, tests) and tell the listeners."""
        self._instances[service] = parse_addresses(service, addresses)
        for listener in self._listeners:
            listener(service, self.instances(service))

    def add_listener(self, listener: InstancesListener) -> None:
        """Call listener(service, instances) when set_instances changes a list."""
        self._listeners.append(listener)

    async def close(self) -> None:
        """Nothing to release."""
