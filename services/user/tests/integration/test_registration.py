"""Discovery: the server registers at start and deregisters at stop, before it stops serving.

The static registry (no CONSUL_HTTP_ADDR) always runs: registration is a no-op there, so the
test watches it through a StaticRegistry that records what the server asked of it (the thing
under test is the server's start/stop wiring, not the registry). The Consul test needs a real
agent and is skipped, with the reason, without CONSUL_HTTP_ADDR.
"""

from __future__ import annotations

import os
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from shop_common.discovery import HealthCheck, ServiceInstance, StaticRegistry
from user_service.entrypoints.grpc.health import SERVICE_NAME
from user_service.server import UserServer

from .conftest import StartServer

pytestmark = pytest.mark.infra


async def _health(address: str) -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        return (
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
            )
        ).status


class RecordingRegistry(StaticRegistry):
    """The static registry, noting each call and whether the instance still served at the time."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.registered: list[tuple[ServiceInstance, HealthCheck | None]] = []

    async def register(self, instance: ServiceInstance, check: HealthCheck | None = None) -> None:
        await super().register(instance, check)
        self.registered.append((instance, check))
        self.calls.append(("register", instance.instance_id))

    async def deregister(self, instance_id: str) -> None:
        address = self.registered[-1][0].address
        self.calls.append(("deregister", (instance_id, await _health(address))))
        await super().deregister(instance_id)

    async def close(self) -> None:
        self.calls.append(("close", None))
        await super().close()


async def test_the_static_registry_is_the_default_without_consul(server: UserServer) -> None:
    assert isinstance(server.registration.registry, StaticRegistry)
    instance = server.registration.instance
    assert (instance.service, instance.host, instance.port) == (
        "user-service",
        "127.0.0.1",
        server.port,
    )
    assert await _health(instance.address) == health_pb2.HealthCheckResponse.SERVING


async def test_registers_at_start_and_deregisters_while_still_serving_at_stop(
    start_server: StartServer,
) -> None:
    registry = RecordingRegistry()
    server = await start_server(registry=registry)
    [(instance, check)] = registry.registered
    assert instance.address == f"127.0.0.1:{server.port}"
    assert instance.tags == ("grpc",)
    assert check is not None
    assert (check.kind, check.grpc_service) == ("grpc", SERVICE_NAME)
    assert check.ttl > 0 and check.deregister_critical_after >= 60

    await server.stop(grace=0.5)

    assert registry.calls == [
        ("register", instance.instance_id),
        # Withdrawn first: the instance was still SERVING when it left the registry.
        ("deregister", (instance.instance_id, health_pb2.HealthCheckResponse.SERVING)),
        ("close", None),
    ]
    with pytest.raises(grpc.aio.AioRpcError):
        await _health(instance.address)


@pytest.mark.consul
async def test_registers_in_consul_with_grpc_and_ttl_checks_and_leaves_at_stop(
    start_server: StartServer,
) -> None:
    address = os.environ.get("CONSUL_HTTP_ADDR")
    if not address:
        pytest.skip("needs a Consul agent: CONSUL_HTTP_ADDR is not set")
    base = address if "://" in address else f"http://{address}"
    server = await start_server(consul_http_addr=address, registration_check_interval=1.0)
    instance_id = server.registration.instance.instance_id
    async with httpx.AsyncClient(base_url=base, timeout=5) as consul:
        services = (await consul.get("/v1/agent/services")).json()
        assert services[instance_id]["Port"] == server.port
        checks = (await consul.get("/v1/agent/checks")).json()
        mine = [c for c in checks.values() if c["ServiceID"] == instance_id]
        assert sorted(c["Type"] for c in mine) == ["grpc", "ttl"]
        await server.stop(grace=0.5)
        assert instance_id not in (await consul.get("/v1/agent/services")).json()
