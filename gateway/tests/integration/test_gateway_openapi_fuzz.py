"""schemathesis against the gateway's OpenAPI (its own endpoints and the transcoded user API):
no 5xx, every response as documented. A real user service and Redis stand behind it; the
gateway and the user service run under one event loop on a thread, schemathesis calls over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from gateway.main import create_app
from gateway.settings import DEFAULT_ROUTES_FILE
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from shop_common.auth import SigningKey, TokenIssuer
from shop_common.discovery import StaticRegistry
from user_service.server import create_server

from .conftest import gateway_settings, user_service_settings

pytestmark = [pytest.mark.infra, pytest.mark.slow]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
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


def fuzz(operation: Any, base_url: str, headers: dict[str, str]) -> Callable[[], None]:
    """A hypothesis test of one operation called with these headers."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    return call  # type: ignore[no-any-return]


@pytest.mark.timeout(300)
def test_no_operation_answers_5xx_or_off_schema(
    served_gateway: tuple[str, dict[str, Any]], issuer: TokenIssuer
) -> None:
    base_url, document = served_gateway
    schema = schemathesis.openapi.from_dict(document)
    tokens = {
        "admin": {"Authorization": f"Bearer {issuer.issue('1', ['admin'])}"},
        "user": {"Authorization": f"Bearer {issuer.issue('2', ['user'])}"},
        "anonymous": {},
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert labels >= {
        "POST /auth/token",
        "GET /.well-known/jwks.json",
        "GET /health",
        "GET /ready",
        "GET /api/users/{user_id}",
        "PATCH /api/users/{user_id}",
    }, labels
    for operation in operations:
        if operation.label == "GET /api/users/updates":
            continue  # an endless SSE stream: covered by the transcoding tests
        for headers in tokens.values():
            fuzz(operation, base_url, headers)()
