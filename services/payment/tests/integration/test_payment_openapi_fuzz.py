"""schemathesis against the app's own OpenAPI: no 5xx, every response as documented.

The app runs in this process under a real uvicorn on a thread with its own event loop (real
database and broker behind it); schemathesis's synchronous client calls it over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from payment_service.main import create_app
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from shop_common.auth import SigningKey, TokenIssuer

pytestmark = pytest.mark.infra

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def served_app(
    database_url: str, amqp_vhost_url: str, signing_key: SigningKey, request: Any
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(base URL, OpenAPI document) of the app served by uvicorn on an ephemeral port."""
    make_settings = request.getfixturevalue("make_settings_fn")
    app = create_app(make_settings(database_url, amqp_vhost_url, signing_key))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        for _ in range(400):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        assert server.started, "the app did not start"
        host, port = sock.getsockname()
        yield f"http://{host}:{port}", app.openapi()
    finally:
        server.should_exit = True
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


def test_no_operation_answers_5xx_or_off_schema(
    served_app: tuple[str, dict[str, Any]], issuer: TokenIssuer
) -> None:
    base_url, document = served_app
    schema = schemathesis.openapi.from_dict(document)
    tokens = {
        "admin": {"Authorization": f"Bearer {issuer.issue('1', ['admin'])}"},
        "user": {"Authorization": f"Bearer {issuer.issue('2', ['user'])}"},
        "anonymous": {},
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /payments/{payment_id}",
        "GET /payments",
        "GET /payments/admin/provider",
        "PUT /payments/admin/provider",
    }
    for operation in operations:
        for headers in tokens.values():
            fuzz(operation, base_url, headers)()
