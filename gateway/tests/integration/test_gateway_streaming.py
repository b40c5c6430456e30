"""A Server-Sent Events route (`stream: true`) through the running gateway: each frame reaches the
client as the backend writes it, and the stream outlives the route's timeout, which bounds the
response headers only; without `stream` the same route's timeout cuts the body."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from shop_common.auth import TokenIssuer

from .conftest import StartGateway, bearer

pytestmark = pytest.mark.infra
FIRST = b"event: a\ndata: {}\n\n"
SECOND = b"event: b\ndata: {}\n\n"


class EventBackend:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.address = ""

    async def start(self) -> None:
        async def events(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(FIRST)
            await self.release.wait()
            await response.write(SECOND)
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_get("/web/orders/{order_id}/events", events)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self.runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self.runner, sock)
        await site.start()
        self.address = f"127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest_asyncio.fixture
async def events_backend() -> AsyncIterator[EventBackend]:
    backend = EventBackend()
    await backend.start()
    yield backend
    await backend.stop()


def _route(stream: bool) -> dict[str, object]:
    return {
        "name": "events",
        "path": "/web/orders/{order_id}/events",
        "methods": ["GET"],
        "backend": "web-service",
        "auth": True,
        "timeout_seconds": 0.5,
        "stream": stream,
    }


async def test_a_streamed_route_passes_each_frame_at_once_and_outlives_its_timeout(
    start_gateway: StartGateway, events_backend: EventBackend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"web-service": events_backend.address}, routes=[_route(True)])
    async with gateway.client() as client:
        headers = bearer(issuer.issue("7", ["user"]))
        async with client.stream("GET", "/web/orders/1/events", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            chunks = response.aiter_raw()
            first = await asyncio.wait_for(anext(chunks), 5)
            assert first == FIRST  # while the backend still holds the second frame
            await asyncio.sleep(0.8)  # past the route's 0.5 s: a stream is not cut
            events_backend.release.set()
            rest = b"".join([chunk async for chunk in chunks])
    assert rest == SECOND


async def test_without_stream_the_routes_timeout_cuts_the_body(
    start_gateway: StartGateway, events_backend: EventBackend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"web-service": events_backend.address}, routes=[_route(False)])
    async with gateway.client() as client:
        headers = bearer(issuer.issue("7", ["user"]))
        response = await client.get("/web/orders/1/events", headers=headers)
    assert response.content == FIRST  # the second frame came after the deadline
