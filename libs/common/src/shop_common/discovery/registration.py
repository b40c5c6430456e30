"""Register this process at start, deregister at stop: one async context manager per service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType

from shop_common.discovery.base import (
    HealthCheck,
    Registry,
    RegistryUnavailableError,
    ServiceInstance,
    advertised_host,
    new_instance_id,
)
from shop_common.logging import get_logger

_log = get_logger(__name__)


def local_instance(
    service: str,
    bind_host: str,
    port: int,
    *,
    tags: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
) -> ServiceInstance:
    """This process as an instance: a fresh per-process id and the host others should dial."""
    return ServiceInstance(
        service=service,
        instance_id=new_instance_id(service),
        host=advertised_host(bind_host),
        port=port,
        tags=tuple(tags),
        meta=dict(meta or {}),
    )


class ServiceRegistration:
    """`async with ServiceRegistration(registry, instance, check):` around a service's lifetime.

    Registration failing at start is logged and retried in the background (a service must not
    refuse to start because Consul is late) unless required=True, which raises instead.
    Deregistration at stop is best-effort: if Consul is gone the TTL check expires and
    DeregisterCriticalServiceAfter removes the instance.
    """

    def __init__(
        self,
        registry: Registry,
        instance: ServiceInstance,
        check: HealthCheck | None = None,
        *,
        required: bool = False,
    ) -> None:
        self.registry = registry
        self.instance = instance
        self.check = check
        self.required = required

    async def __aenter__(self) -> ServiceInstance:
        try:
            await self.registry.register(self.instance, self.check)
        except RegistryUnavailableError as exc:
            if self.required:
                await self._deregister()
                raise
            _log.error(
                "registration_deferred",
                instance_id=self.instance.instance_id,
                error=str(exc),
            )
        return self.instance

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._deregister()

    async def _deregister(self) -> None:
        try:
            await self.registry.deregister(self.instance.instance_id)
        except RegistryUnavailableError as error:
            _log.warning(
                "deregistration_failed", instance_id=self.instance.instance_id, error=str(error)
            )
