"""What discovery is about: service instances, their health-check spec and the Registry protocol."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable


class DiscoveryError(Exception):
    """Base of the discovery errors."""


class RegistryUnavailableError(DiscoveryError):
    """The registry (Consul) could not be reached or refused the request."""


class ServiceNotWatchedError(DiscoveryError):
    """instances() was asked for a service nobody called watch() for."""

    def __init__(self, service: str) -> None:
        super().__init__(f"service {service!r} is not watched; await registry.watch({service!r})")
        self.service = service


class NoAvailableInstanceError(DiscoveryError):
    """No instance of the service is registered, or every one is ejected by its breaker."""

    def __init__(self, service: str, known: int) -> None:
        reason = "no instance registered" if known == 0 else f"all {known} instances ejected"
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.known = known


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One running process of a service, as the registry knows it."""

    service: str
    instance_id: str
    host: str
    port: int
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def address(self) -> str:
        """host:port (what gRPC channels and breaker names use)."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://host:port (what HTTP clients use)."""
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """How the registry checks an instance: a probe it runs itself plus a TTL heartbeat.

    kind "http" probes GET http://host:port{http_path}; kind "grpc" calls grpc.health.v1 for
    grpc_service ("" = the whole server). The TTL check turns critical when the process stops
    heartbeating (hung event loop, SIGKILL); after deregister_critical_after in critical state
    the registry removes the instance (Consul's minimum is 60 s).
    """

    kind: Literal["http", "grpc"] = "http"
    http_path: str = "/health"
    grpc_service: str = ""
    interval: float = 5.0
    timeout: float = 2.0
    ttl: float = 15.0
    deregister_critical_after: float = 60.0

    @classmethod
    def http(cls, path: str = "/health", **knobs: float) -> HealthCheck:
        """An HTTP GET probe of path (2xx = passing)."""
        return cls(kind="http", http_path=path, **knobs)  # type: ignore[arg-type]

    @classmethod
    def grpc(cls, service: str = "", **knobs: float) -> HealthCheck:
        """A grpc.health.v1 probe of service."""
        return cls(kind="grpc", grpc_service=service, **knobs)  # type: ignore[arg-type]

    @property
    def heartbeat_interval(self) -> float:
        """How often the TTL check is refreshed: three beats per TTL, so one lost beat is harmless."""
        return self.ttl / 3


InstancesListener = Callable[[str, Sequence[ServiceInstance]], None]


@runtime_checkable
class Registry(Protocol):
    """Register this process's instances and look other services' instances up locally."""

    async def register(self, instance: ServiceInstance, check: HealthCheck | None = None) -> None:
        """Announce instance and keep it announced (heartbeats) until deregister()."""
        ...

    async def deregister(self, instance_id: str) -> None:
        """Withdraw an instance registered by this process."""
        ...

    async def watch(self, *services: str) -> None:
        """Start keeping a local list of each service's passing instances (first answer awaited)."""
        ...

    def instances(self, service: str) -> list[ServiceInstance]:
        """The local list of passing instances; never a network call."""
        ...

    def add_listener(self, listener: InstancesListener) -> None:
        """Call listener(service, instances) whenever a watched list changes."""
        ...

    async def close(self) -> None:
        """Stop the background tasks and release connections."""
        ...


def new_instance_id(service: str) -> str:
    """An id unique to this process: service, host name, pid and a random suffix."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def parse_addresses(service: str, addresses: str | Sequence[str]) -> list[ServiceInstance]:
    """Instances from "host:port,host:port" (or a list of host:port); ValueError when malformed."""
    items = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    instances = []
    for raw in (item.strip() for item in items):
        if not raw:
            continue
        host, sep, port = raw.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{service}: {raw!r} is not host:port")
        instances.append(ServiceInstance(service, f"{service}@{host}:{port}", host, int(port)))
    return instances


def advertised_host(bind_host: str) -> str:
    """The host others should dial: bind_host, or this machine's name for a wildcard bind."""
    if bind_host in ("", "0.0.0.0", "::"):  # noqa: S104 - recognising a wildcard, not binding one
        return socket.gethostname()
    return bind_host
