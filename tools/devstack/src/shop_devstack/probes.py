"""Readiness probes: gRPC health for the user service, GET /ready for the HTTP services."""

from __future__ import annotations

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_devstack.layout import ProcessSpec


async def grpc_serving(address: str, deadline_s: float = 1.0) -> bool:
    """True when grpc.health.v1 Check("") answers SERVING at address."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline_s)
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def http_ready(base_url: str, client: httpx.AsyncClient, deadline_s: float = 1.0) -> bool:
    """True when GET {base_url}/ready answers 200."""
    try:
        response = await client.get(f"{base_url}/ready", timeout=deadline_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def is_ready(process: ProcessSpec, client: httpx.AsyncClient) -> bool:
    """The process's own readiness, by its protocol."""
    if process.probe == "grpc":
        return await grpc_serving(process.address)
    return await http_ready(f"http://{process.address}", client)
