"""Request ids, structlog binding and the one access line per request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
import structlog

if TYPE_CHECKING:
    from conftest import Harness


async def test_request_id_is_generated_bound_and_returned(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    response = await client.get("/context")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert response.json() == {"bound": request_id, "state": request_id}
    # Unbound again once the request is over (ASGITransport runs it in this very task).
    assert "request_id" not in structlog.contextvars.get_contextvars()


async def test_caller_request_id_is_propagated(client: httpx.AsyncClient) -> None:
    response = await client.get("/context", headers={"X-Request-ID": "abc-123.x:y"})
    assert response.headers["x-request-id"] == "abc-123.x:y"
    assert response.json()["bound"] == "abc-123.x:y"


async def test_unsafe_caller_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/context", headers={"X-Request-ID": "evil\tinjected log=1"})
    assert response.headers["x-request-id"] != "evil\tinjected log=1"
    assert len(response.headers["x-request-id"]) == 32
    too_long = "a" * 129
    assert (await client.get("/context", headers={"X-Request-ID": too_long})).headers[
        "x-request-id"
    ] != too_long


async def test_concurrent_requests_keep_their_own_ids(client: httpx.AsyncClient) -> None:
    ids = [f"req-{n}" for n in range(20)]
    responses = await asyncio.gather(
        *(client.get("/context", headers={"X-Request-ID": i}) for i in ids)
    )
    assert [r.json()["bound"] for r in responses] == ids


async def test_one_access_line_per_request_with_route_status_and_duration(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    await client.get("/items/5", headers={"X-Request-ID": "line-1"})
    await client.get("/nope", headers={"X-Request-ID": "line-2"})
    lines = harness.access_lines()
    assert len(lines) == 2
    first, second = lines
    assert first["request_id"] == "line-1"
    assert (first["method"], first["path"], first["route"], first["status"]) == (
        "GET",
        "/items/5",
        "/items/{item_id}",
        200,
    )
    assert first["log_level"] == "info"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert (second["route"], second["status"]) == ("<unmatched>", 404)


async def test_probe_requests_are_logged_at_debug(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    await client.get("/health")
    (line,) = harness.access_lines()
    assert line["log_level"] == "debug"


async def test_access_line_names_the_authenticated_subject(
    client: httpx.AsyncClient, harness: Harness, issuer
) -> None:  # type: ignore[no-untyped-def]
    token = issuer.issue("42", ["customer"])
    await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert harness.access_lines()[-1]["subject"] == "42"


async def test_an_id_set_by_the_app_is_replaced_not_duplicated(client: httpx.AsyncClient) -> None:
    response = await client.get("/sets-own-id", headers={"X-Request-ID": "edge-1"})
    assert response.headers.get_list("x-request-id") == ["edge-1"]
