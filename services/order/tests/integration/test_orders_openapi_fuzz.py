"""schemathesis against the app's own OpenAPI: no 5xx, every response as documented.

The app runs under a real uvicorn on this test's event loop (with the real user service,
database, broker and Redis behind it); schemathesis's synchronous client calls it from a
worker thread, so the loop keeps serving while hypothesis generates cases.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from order_service.main import create_app
from order_service.settings import Settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 15


@pytest_asyncio.fixture
async def served(order_settings: Callable[..., Settings]) -> AsyncIterator[tuple[str, Any]]:
    """(base URL, OpenAPI document) of the app served by uvicorn on an ephemeral port."""
    app = create_app(order_settings())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(60):
            while not server.started:
                assert not serving.done(), "the app did not start"
                await asyncio.sleep(0.05)
        host, port = sock.getsockname()
        yield f"http://{host}:{port}", app.openapi()
    finally:
        server.should_exit = True
        await serving
        sock.close()


def fuzz(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    """Run hypothesis over one operation called with these headers."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)

    call()


@pytest.mark.timeout(240)
async def test_no_operation_answers_5xx_or_off_schema(
    served: tuple[str, Any], shopper: Shopper, admin_token: str
) -> None:
    base_url, document = served
    _, user_token = await shopper()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /orders",
        "GET /orders",
        "GET /orders/{order_id}",
        "POST /orders/{order_id}/cancel",
    }
    identities = [bearer(user_token), bearer(admin_token), {}]
    for operation in operations:
        for headers in identities:
            await asyncio.to_thread(fuzz, operation, base_url, headers)
