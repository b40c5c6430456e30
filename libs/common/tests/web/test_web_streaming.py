"""Through a real uvicorn: the middleware stack streams (no buffering) and limits chunked bodies."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
from prometheus_client import REGISTRY
from shop_common.web import PROBLEM_MEDIA_TYPE
from shop_testing.scrape import scrape
from shop_testing.wait import eventually

if TYPE_CHECKING:
    from conftest import Harness

STREAM_LABELS = {"protocol": "http", "operation": "GET /stream", "code": "200", "outcome": "ok"}


async def test_streamed_response_reaches_the_client_chunk_by_chunk(
    server_url: str, harness: Harness
) -> None:
    before = REGISTRY.get_sample_value("shop_requests_total", STREAM_LABELS) or 0.0
    async with (
        httpx.AsyncClient(base_url=server_url) as client,
        client.stream("GET", "/stream", headers={"X-Request-ID": "s-1"}) as response,
    ):
        assert response.headers["x-request-id"] == "s-1"
        lines = response.aiter_lines()
        # The second chunk cannot exist until the gate opens: a buffering middleware
        # would hold the first one back and this read would hit the deadline.
        async with asyncio.timeout(10):
            assert await anext(lines) == "first"
        assert not harness.stream_gate.is_set()
        harness.stream_gate.set()
        async with asyncio.timeout(10):
            assert [line async for line in lines] == ["second"]
    await eventually(lambda: bool(harness.access_lines()), what="the access log line")
    (line,) = harness.access_lines()
    assert (line["route"], line["status"], line["request_id"]) == ("/stream", 200, "s-1")
    after = REGISTRY.get_sample_value("shop_requests_total", STREAM_LABELS)
    assert after == before + 1


async def test_chunked_upload_over_the_limit_is_a_413_problem(server_url: str) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(8):
            yield b"z" * 256

    async with httpx.AsyncClient(base_url=server_url) as client:
        response = await client.post("/upload", content=chunks())
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert response.json()["detail"] == f"request body exceeds {1024} bytes"
        small = await client.post("/upload", content=b"a" * 1024)
        assert small.json() == {"size": 1024}


async def test_problem_responses_over_a_real_server(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        missing = await client.get("/nope")
        boom = await client.get("/boom")
        oversized = await client.post("/upload", content=b"x" * (1024 + 1))
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM_MEDIA_TYPE)
    assert (boom.status_code, boom.headers["content-type"]) == (500, PROBLEM_MEDIA_TYPE)
    assert oversized.status_code == 413


async def test_red_family_scraped_over_http_as_prometheus_reads_it(server_url: str) -> None:
    before = await scrape(f"{server_url}/metrics")
    async with httpx.AsyncClient(base_url=server_url) as client:
        assert (await client.get("/items/5")).status_code == 200
        assert (await client.get("/items/0")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
    after = await scrape(f"{server_url}/metrics")
    operation = "GET /items/{item_id}"

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("shop_requests_total", protocol="http", operation=operation, outcome="ok") == 1
    assert (
        delta("shop_requests_total", operation=operation, code="404", outcome="client_error") == 1
    )
    assert delta("shop_requests_total", operation="GET /boom", outcome="server_error") == 1
    assert delta("shop_request_duration_seconds_count", operation=operation) == 2
    assert after.has("shop_requests_in_flight", protocol="http")
