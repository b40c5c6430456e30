"""schemathesis against the gateway's OpenAPI (its own endpoints and the transcoded user API):
no 5xx, every response as documented. A real user service and Redis stand behind it; the
gateway and the user service run under one event loop on a thread, schemathesis calls over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from gateway.entrypoints.app import create_app
from gateway.settings import DEFAULT_ROUTES_FILE
from shop_common.auth import SigningKey, TokenIssuer
from shop_common.discovery import StaticRegistry
from shop_testing.fuzz import CONFORMANCE, fuzz_app, identities
from user_service.server import create_server

from .conftest import gateway_settings, user_service_settings

pytestmark = [pytest.mark.infra, pytest.mark.slow]
EXAMPLES_PER_OPERATION = 10


@pytest.fixture
def served_gateway(
    database_url: str, redis_url: str, redis_namespace: str, signing_key: SigningKey
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(base URL, OpenAPI document) of a gateway in front of a real user service."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    holder: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        user_settings = user_service_settings(database_url, signing_key)
        user_server, port = await create_server(user_settings, "127.0.0.1:0")
        registry = StaticRegistry(
            {
                "user-service": f"127.0.0.1:{port}",
                "order-service": "127.0.0.1:1",
                "payment-service": "127.0.0.1:1",
                "catalog-service": "127.0.0.1:1",
                "web-service": "127.0.0.1:1",
            }
        )
        settings = gateway_settings(
            redis_url, redis_namespace, signing_key, Path(DEFAULT_ROUTES_FILE)
        )
        app = create_app(settings, registry=registry)
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        )
        holder.update(app=app, server=server)
        started.set()
        try:
            await server.serve(sockets=[sock])
        finally:
            await user_server.stop(grace=0.2)

    thread = threading.Thread(target=lambda: asyncio.run(main()))
    thread.start()
    try:
        assert started.wait(120), "the user service did not start"
        server = holder["server"]
        for _ in range(2400):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        assert server.started, "the gateway did not start"
        host, port = sock.getsockname()
        yield f"http://{host}:{port}", holder["app"].openapi()
    finally:
        if "server" in holder:
            holder["server"].should_exit = True
        thread.join(30)
        sock.close()


@pytest.mark.timeout(300)
def test_no_operation_answers_5xx_or_off_schema(
    served_gateway: tuple[str, dict[str, Any]], issuer: TokenIssuer
) -> None:
    base_url, document = served_gateway
    fuzz_app(
        document,
        base_url,
        identities(issuer),
        must_include={
            "POST /auth/token",
            "GET /.well-known/jwks.json",
            "GET /health",
            "GET /ready",
            "GET /api/users/{user_id}",
            "PATCH /api/users/{user_id}",
        },
        examples=EXAMPLES_PER_OPERATION,
        checks=CONFORMANCE,
        skip={"GET /api/users/updates"},  # an endless SSE stream: covered by the transcoding tests
    )
