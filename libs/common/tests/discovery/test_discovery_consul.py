"""ConsulRegistry against a real Consul agent (CONSUL_HTTP_ADDR); skipped with the reason otherwise.

The agent must reach this machine's loopback (a local `consul agent -dev`), because it runs
the HTTP and gRPC probes against the test's own servers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Response
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from shop_common.discovery import (
    ConsulRegistry,
    HealthCheck,
    ServiceInstance,
    ServiceRegistration,
    local_instance,
)
from shop_common.discovery.consul import CONSUL_WATCH_RETRY
from shop_testing.wait import eventually

pytestmark = pytest.mark.consul
FAST_CHECK = {"interval": 1.0, "timeout": 1.0, "ttl": 3.0, "deregister_critical_after": 60.0}


@pytest.fixture(scope="module")
def consul_addr() -> str:
    address = os.environ.get("CONSUL_HTTP_ADDR")
    if not address:
        pytest.skip("needs a Consul agent: CONSUL_HTTP_ADDR is not set")
    base = address if "://" in address else f"http://{address}"
    try:
        httpx.get(f"{base}/v1/status/leader", timeout=2.0).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"needs a Consul agent: {address} does not answer ({exc!r})")
    return address


@pytest_asyncio.fixture
async def registry(consul_addr: str) -> AsyncIterator[ConsulRegistry]:
    consul = ConsulRegistry(consul_addr, wait_seconds=5.0)
    yield consul
    for instance_id in list(consul.registered_ids):
        await consul.deregister(instance_id)
    await consul.close()


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest_asyncio.fixture
async def http_service() -> AsyncIterator[tuple[int, dict[str, int]]]:
    """A real HTTP server whose /health status the test sets."""
    health_status = {"code": 200}
    app = FastAPI()

    @app.get("/health")
    async def health_endpoint() -> Response:
        return Response(status_code=health_status["code"])

    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started, timeout=10)
    yield sock.getsockname()[1], health_status
    server.should_exit = True
    await task
    sock.close()


def unique(service: str) -> str:
    return f"{service}-{uuid.uuid4().hex[:8]}"


async def test_http_checked_instance_is_discovered_with_tags_and_meta(
    registry: ConsulRegistry, http_service: tuple[int, dict[str, int]]
) -> None:
    port, _ = http_service
    service = unique("order-service")
    instance = local_instance(service, "127.0.0.1", port, tags=["v1"], meta={"env": "test"})
    await registry.watch(service)
    async with ServiceRegistration(registry, instance, HealthCheck.http(**FAST_CHECK)):
        await eventually(lambda: registry.instances(service) != [])
        (found,) = registry.instances(service)
        assert found == ServiceInstance(
            service, instance.instance_id, "127.0.0.1", port, ("v1",), {"env": "test"}
        )
    await eventually(lambda: registry.instances(service) == [])


async def test_failing_probe_removes_the_instance_and_recovery_brings_it_back(
    registry: ConsulRegistry, http_service: tuple[int, dict[str, int]]
) -> None:
    port, health_status = http_service
    service = unique("payment-service")
    await registry.watch(service)
    async with ServiceRegistration(
        registry, local_instance(service, "127.0.0.1", port), HealthCheck.http(**FAST_CHECK)
    ):
        await eventually(lambda: len(registry.instances(service)) == 1)
        health_status["code"] = 503
        await eventually(lambda: registry.instances(service) == [])
        health_status["code"] = 200
        await eventually(lambda: len(registry.instances(service)) == 1)


async def test_grpc_checked_instance_is_discovered(registry: ConsulRegistry) -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("shop.user.v1.UserService", health_pb2.HealthCheckResponse.SERVING)
    service = unique("user-service")
    try:
        await registry.watch(service)
        check = HealthCheck.grpc("shop.user.v1.UserService", **FAST_CHECK)
        async with ServiceRegistration(registry, local_instance(service, "127.0.0.1", port), check):
            await eventually(lambda: len(registry.instances(service)) == 1)
            await servicer.set(
                "shop.user.v1.UserService", health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await eventually(lambda: registry.instances(service) == [])
    finally:
        await server.stop(None)


async def test_stopped_heartbeat_turns_the_instance_critical(
    consul_addr: str, registry: ConsulRegistry, http_service: tuple[int, dict[str, int]]
) -> None:
    """A process that stops heartbeating (hung, killed) drops out although its port answers."""
    port, _ = http_service
    service = unique("order-service")
    await registry.watch(service)
    owner = ConsulRegistry(consul_addr)
    instance = local_instance(service, "127.0.0.1", port)
    await owner.register(instance, HealthCheck.http(**FAST_CHECK))
    try:
        await eventually(lambda: len(registry.instances(service)) == 1)
        await owner.close()  # heartbeats stop; no deregistration
        await eventually(lambda: registry.instances(service) == [])
    finally:
        await registry.deregister(instance.instance_id)


async def test_instance_forgotten_by_the_agent_is_registered_again(
    consul_addr: str, registry: ConsulRegistry, http_service: tuple[int, dict[str, int]]
) -> None:
    port, _ = http_service
    service = unique("order-service")
    await registry.watch(service)
    instance = local_instance(service, "127.0.0.1", port)
    async with ServiceRegistration(registry, instance, HealthCheck.http(**FAST_CHECK)):
        await eventually(lambda: len(registry.instances(service)) == 1)
        base = consul_addr if "://" in consul_addr else f"http://{consul_addr}"
        async with httpx.AsyncClient(base_url=base) as raw:
            response = await raw.put(f"/v1/agent/service/deregister/{instance.instance_id}")
            response.raise_for_status()
        await eventually(lambda: registry.instances(service) == [])
        await eventually(lambda: len(registry.instances(service)) == 1)


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_last_known_list_survives_a_consul_outage(
    consul_addr: str, registry: ConsulRegistry, http_service: tuple[int, dict[str, int]]
) -> None:
    """A watcher reaching Consul through a TCP relay keeps its list when the relay is cut."""
    port, _ = http_service
    service = unique("order-service")
    target = consul_addr.split("://")[-1]
    host, _, target_port = target.rpartition(":")
    links: list[asyncio.StreamWriter] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(target_port))
        links.extend([writer, up_writer])
        await asyncio.gather(forward(reader, up_writer), forward(up_reader, writer))

    relay_server = await asyncio.start_server(relay, "127.0.0.1", 0)
    relay_port = relay_server.sockets[0].getsockname()[1]
    watcher = ConsulRegistry(
        f"127.0.0.1:{relay_port}",
        wait_seconds=2.0,
        watch_retry=replace(CONSUL_WATCH_RETRY, max_backoff=1.0),
    )
    try:
        await watcher.watch(service)
        async with ServiceRegistration(
            registry, local_instance(service, "127.0.0.1", port), HealthCheck.http(**FAST_CHECK)
        ):
            await eventually(lambda: len(watcher.instances(service)) == 1)
            relay_server.close()
            for link in links:
                link.close()
            await relay_server.wait_closed()
            errors = watcher_errors(service)
            await eventually(lambda: watcher_errors(service) > errors)
            assert len(watcher.instances(service)) == 1  # kept through the outage
    finally:
        await watcher.close()


def watcher_errors(service: str) -> float:
    return (
        REGISTRY.get_sample_value("shop_discovery_watch_errors_total", {"service": service}) or 0.0
    )
