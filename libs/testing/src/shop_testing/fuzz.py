"""schemathesis against a service's own OpenAPI document: no 5xx, every response as documented.

Used by the order, payment and gateway suites (`make test` runs them). Import it from tests only:
it needs schemathesis and hypothesis (development dependencies).

    with serve_in_thread(create_app(settings)) as base_url:
        fuzz_app(app.openapi(), base_url, [bearer(user), bearer(admin), {}],
                 must_include={"POST /orders"}, examples=15)
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from shop_common.auth import TokenIssuer

# What every response must satisfy: no 5xx, a documented status and content type, a body that
# matches its schema. NEGATIVE_DATA adds: input the schema forbids is refused with a 4xx.
CONFORMANCE: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_DATA: list[Callable[..., Any]] = [*CONFORMANCE, negative_data_rejection]


def identities(issuer: TokenIssuer) -> list[dict[str, str]]:
    """The callers to fuzz as: an admin (subject 1), a plain user (subject 2), anonymous."""
    return [
        {"Authorization": f"Bearer {issuer.issue('1', ['admin'])}"},
        {"Authorization": f"Bearer {issuer.issue('2', ['user'])}"},
        {},
    ]


def operations(document: Mapping[str, Any], must_include: Iterable[str] = ()) -> list[Any]:
    """The document's operations; fails naming any of `must_include` ("POST /orders") missing,
    so a route that fell out of the schema is not silently left unfuzzed."""
    schema = schemathesis.openapi.from_dict(dict(document))
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read: say which
            raise result.err()
        found.append(result.ok())
    missing = set(must_include) - {operation.label for operation in found}
    assert not missing, f"operations missing from the OpenAPI document: {sorted(missing)}"
    return found


def fuzz_operation(
    operation: Any,
    base_url: str,
    headers: Mapping[str, str],
    *,
    examples: int,
    checks: list[Callable[..., Any]] = NEGATIVE_DATA,
    timeout: float = 10.0,
) -> None:
    """Call one operation with `examples` generated cases and these headers; raises the first
    failed check (hypothesis shrinks it to a minimal case first)."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url, headers=dict(headers), checks=checks, timeout=timeout
        )

    call()


def fuzz_app(
    document: Mapping[str, Any],
    base_url: str,
    identities: Iterable[Mapping[str, str]],
    *,
    must_include: Iterable[str],
    examples: int,
    checks: list[Callable[..., Any]] = NEGATIVE_DATA,
    skip: Iterable[str] = (),
) -> None:
    """Every operation of the document but `skip` (labels, e.g. an endless stream), as each
    identity (its headers), `examples` cases each. Blocking (schemathesis's client is
    synchronous): from async code, run it in a thread."""
    callers, skipped = list(identities), set(skip)
    for operation in operations(document, must_include):
        if operation.label in skipped:
            continue
        for headers in callers:
            fuzz_operation(operation, base_url, headers, examples=examples, checks=checks)


@contextmanager
def serve_in_thread(app: Any, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve the ASGI app (lifespan on) with uvicorn on an ephemeral port, on a thread with its
    own event loop; yields the base URL, stops the server and joins the thread afterwards."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        ready = threading.Event()
        for _ in range(max(1, int(start_timeout / 0.05))):
            if server.started or not thread.is_alive():
                break
            ready.wait(0.05)
        assert server.started, "the app did not start"
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
