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
import uvicorn
from order_service.entrypoints.http import create_app
from order_service.settings import Settings
from shop_testing.fuzz import fuzz_app

from .conftest import Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]

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


@pytest.mark.timeout(240)
async def test_no_operation_answers_5xx_or_off_schema(
    served: tuple[str, Any], shopper: Shopper, admin_token: str
) -> None:
    base_url, document = served
    _, user_token = await shopper()
    await asyncio.to_thread(
        fuzz_app,
        document,
        base_url,
        [bearer(user_token), bearer(admin_token), {}],
        must_include={
            "POST /orders",
            "GET /orders",
            "GET /orders/{order_id}",
            "POST /orders/{order_id}/cancel",
        },
        examples=EXAMPLES_PER_OPERATION,
    )
