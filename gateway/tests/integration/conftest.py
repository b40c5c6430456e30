"""Fixtures: real backends (aiohttp on ephemeral ports), a real gateway (uvicorn in-process), keys."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml
from aiohttp import web
from fastapi import FastAPI
from gateway.entrypoints.app import create_app
from gateway.settings import Settings
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.discovery import StaticRegistry
from user_service.settings import Settings as UserSettings

ISSUER, AUDIENCE = "shop-gateway", "shop"

ORDER_ROUTES: list[dict[str, Any]] = [
    {
        "name": "limited",
        "path": "/api/orders/limited",
        "methods": ["GET"],
        "backend": "order-service",
        "strip_prefix": "/api",
        "auth": True,
        "rate_limit": {"limit": 5, "window_seconds": 60, "fail": "closed"},
    },
    {
        "name": "open-when-down",
        "path": "/api/orders/lenient",
        "methods": ["GET"],
        "backend": "order-service",
        "strip_prefix": "/api",
        "auth": True,
        "rate_limit": {"limit": 5, "window_seconds": 60, "fail": "open"},
    },
    {
        "name": "cached",
        "path": "/api/orders/cached/**",
        "methods": ["GET"],
        "backend": "order-service",
        "strip_prefix": "/api",
        "auth": False,
        "cache_ttl_seconds": 30,
    },
    {
        "name": "admin",
        "path": "/api/orders/admin/**",
        "methods": ["GET"],
        "backend": "order-service",
        "strip_prefix": "/api",
        "roles": ["admin"],
    },
    {
        "name": "orders",
        "path": "/api/orders/**",
        "methods": ["GET", "POST", "DELETE"],
        "backend": "order-service",
        "strip_prefix": "/api",
        "auth": True,
        "timeout_seconds": 2.0,
        "retries": 2,
    },
]


@dataclass
class Backend:
    """A real HTTP backend that records every request it sees."""

    port: int
    runner: web.AppRunner
    seen: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hits(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if s["method"] == method and s["path"] == path)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_backend(name: str = "backend", port: int = 0) -> Backend:
    """An aiohttp app: echoes what it received; /orders/status/{n} answers n; /orders/moved/{self,
    other} answers 307 (201 to POST) with a Location at itself or at another internal address."""
    backend: Backend

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        backend.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "headers": dict(request.headers),
            }
        )
        if request.path.startswith("/orders/moved/"):  # Location as a backend sees itself
            where = {"self": f"http://{request.host}/orders/1", "other": "http://10.0.0.9:8001/x"}
            status = 201 if request.method == "POST" else 307
            location = where[request.path.rsplit("/", 1)[1]]
            return web.json_response({}, status=status, headers={"Location": location})
        if request.path.startswith("/orders/status/"):
            return web.json_response({"status": "x"}, status=int(request.path.rsplit("/", 1)[1]))
        extra = {"Connection": "X-Back-Hop", "X-Back-Hop": "1", "X-Served-By": name}
        if request.path.startswith("/orders/cached/nostore"):
            extra["Cache-Control"] = "no-store"
        return web.json_response(
            {
                "served_by": name,
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "body_bytes": len(body),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "count": len(backend.seen),
            },
            status=backend.status,
            headers=extra,
        )

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    backend = Backend(bound, runner)
    return backend


@dataclass
class RunningGateway:
    """A gateway served by uvicorn on an ephemeral port."""

    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str
    registry: StaticRegistry

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def stop(self) -> None:
        if not self.task.done():
            self.server.should_exit = True
            await self.task


async def serve(app: FastAPI, registry: StaticRegistry) -> RunningGateway:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    return RunningGateway(app, server, task, f"http://127.0.0.1:{port}", registry)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key("gw-test-1")


@pytest.fixture(scope="session")
def issuer(signing_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(signing_key, ISSUER, AUDIENCE)


def routes_file(directory: Path, routes: list[dict[str, Any]]) -> Path:
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump({"routes": routes}), encoding="utf-8")
    return path


def gateway_settings(
    redis: str, redis_namespace: str, signing_key: SigningKey, routes: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "redis_url": redis,
        "rate_limit_prefix": f"{redis_namespace}rl:",
        "cache_prefix": f"{redis_namespace}rc:",
        "login_throttle_prefix": f"{redis_namespace}lt:",
        "jwt_private_key": signing_key.private_pem,
        "jwt_kid": signing_key.kid,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "routes_file": routes,
        "cache_events_enabled": False,
        "register_in_discovery": False,
        "breaker_recovery_seconds": 0.5,
        # Password hashing in the user service is slow on a busy 2-core machine.
        "user_call_timeout_seconds": 20.0,
        # Fail-closed routes turn a slow Redis into 503s; a loaded test machine is not an outage.
        "redis_timeout_seconds": 5.0,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest_asyncio.fixture
async def start_gateway(
    redis_url: str, redis_namespace: str, signing_key: SigningKey, tmp_path: Path
) -> AsyncIterator[StartGateway]:
    """start_gateway(addresses={"order-service": "h:p,..."}, routes=[...], **settings)."""
    running: list[RunningGateway] = []

    async def start(
        addresses: dict[str, str] | None = None,
        routes: list[dict[str, Any]] | None = None,
        **overrides: Any,
    ) -> RunningGateway:
        registry = StaticRegistry(addresses or {})
        path = routes_file(tmp_path, routes if routes is not None else ORDER_ROUTES)
        settings = gateway_settings(redis_url, redis_namespace, signing_key, path, **overrides)
        gateway = await serve(create_app(settings, registry=registry), registry)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.stop()


@pytest_asyncio.fixture
async def backend() -> AsyncIterator[Backend]:
    started = await start_backend("a")
    yield started
    await started.stop()


def user_service_settings(
    database_url: str, signing_key: SigningKey, **overrides: Any
) -> UserSettings:
    """A real user service's settings: trusts the test key, no relay unless asked."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_public_keys": {signing_key.kid: signing_key.public_pem},
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "outbox_relay_enabled": False,
        "grace_period": 0.5,
    }
    values.update(overrides)
    return UserSettings(**values)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
