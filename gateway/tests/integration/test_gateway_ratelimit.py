"""Rate limits through the running gateway: exact under concurrency, across processes, Redis down."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from shop_common.auth import SigningKey, TokenIssuer

from .conftest import AUDIENCE, ISSUER, ORDER_ROUTES, Backend, StartGateway, bearer, routes_file

pytestmark = pytest.mark.infra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_limit_n_admits_exactly_n_of_concurrent_requests_with_headers(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    token = issuer.issue(f"u{uuid.uuid4().hex[:8]}", [])
    async with gateway.client() as client:
        responses = await asyncio.gather(
            *(client.get("/api/orders/limited", headers=bearer(token)) for _ in range(40))
        )
        other_user = await client.get(
            "/api/orders/limited", headers=bearer(issuer.issue("someone-else", []))
        )
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) == 5
    assert len(refused) == 35
    assert backend.hits("GET", "/orders/limited") == 5 + 1
    assert other_user.status_code == 200
    assert {r.headers["ratelimit-policy"] for r in ok} == {'"default";q=5;w=60'}
    assert sorted(r.headers["ratelimit"].split(";")[1] for r in ok) == [f"r={n}" for n in range(5)]
    sample = refused[0]
    assert sample.headers["content-type"] == "application/problem+json"
    assert 1 <= int(sample.headers["retry-after"]) <= 60
    assert sample.headers["ratelimit"].startswith('"default";r=0;t=')


@pytest_asyncio.fixture
async def gateway_process(
    redis_url: str, redis_namespace: str, signing_key: SigningKey, tmp_path: Path
) -> AsyncIterator[Callable[[str], str]]:
    """Starts `python -m gateway` subprocesses sharing this test's Redis prefix; returns URLs."""
    processes: list[subprocess.Popen[bytes]] = []
    routes = routes_file(tmp_path, ORDER_ROUTES)

    def start(order_addresses: str) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "HTTP_PORT": str(port),
            "REDIS_URL": redis_url,
            "REDIS_TIMEOUT_SECONDS": "5",
            "RATE_LIMIT_PREFIX": f"{redis_namespace}rl:",
            "CACHE_PREFIX": f"{redis_namespace}rc:",
            "ROUTES_FILE": str(routes),
            "JWT_PRIVATE_KEY": signing_key.private_pem,
            "JWT_KID": signing_key.kid,
            "JWT_PUBLIC_KEYS": json.dumps({}),
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "ORDER_SERVICE_ADDRESSES": order_addresses,
            "USER_EVENTS_ENABLED": "false",
            "REGISTER_IN_DISCOVERY": "false",
            "LOG_LEVEL": "WARNING",
        }
        processes.append(
            subprocess.Popen([sys.executable, "-m", "gateway"], env=env, stdout=subprocess.DEVNULL)
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=15)


async def _wait_healthy(client: httpx.AsyncClient, url: str) -> None:
    # A cold interpreter imports grpc, aio-pika and SQLAlchemy: slow on a busy 2-core machine.
    async with asyncio.timeout(120):
        while True:
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_limit_is_shared_by_two_gateway_processes(
    gateway_process: Callable[[str], str], backend: Backend, issuer: TokenIssuer
) -> None:
    urls = [gateway_process(backend.address), gateway_process(backend.address)]
    token = issuer.issue(f"u{uuid.uuid4().hex[:8]}", [])
    async with httpx.AsyncClient(timeout=10) as client:
        for url in urls:
            await _wait_healthy(client, url)
        responses = await asyncio.gather(
            *(
                client.get(f"{urls[i % 2]}/api/orders/limited", headers=bearer(token))
                for i in range(30)
            )
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 5
    assert statuses.count(429) == 25
    # Both processes answered, and both refused: the window is one, in Redis.
    assert {r.url.port for r in responses if r.status_code == 429} == {
        httpx.URL(u).port for u in urls
    }


async def test_redis_down_fails_closed_or_open_per_route(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    dead_redis = f"redis://127.0.0.1:{_free_port()}/0"
    gateway = await start_gateway({"order-service": backend.address}, redis_url=dead_redis)
    token = issuer.issue("7", [])
    async with gateway.client() as client:
        closed = await client.get("/api/orders/limited", headers=bearer(token))
        opened = await client.get("/api/orders/lenient", headers=bearer(token))
        cached_route = await client.get("/api/orders/cached/1")
        ready = await client.get("/ready")
    assert closed.status_code == 503
    assert closed.headers["retry-after"] == "1"
    assert closed.headers["content-type"] == "application/problem+json"
    assert opened.status_code == 200
    assert "ratelimit" not in opened.headers
    assert cached_route.status_code == 200  # the cache fails open: a MISS
    assert cached_route.headers["x-cache"] == "MISS"
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] != "ok"
    assert backend.hits("GET", "/orders/limited") == 0


async def test_ready_needs_redis_and_an_instance_of_every_backend(
    start_gateway: StartGateway, backend: Backend
) -> None:
    complete = await start_gateway({"order-service": backend.address})
    missing = await start_gateway({})
    async with complete.client() as client:
        ready = await client.get("/ready")
    async with missing.client() as client:
        not_ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "backends": "ok"}
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["backends"] == "failing"
