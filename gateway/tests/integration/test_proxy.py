import asyncio
import json
import socket

import pytest
from aiohttp import web
from gateway.adapters.http_proxy import Proxy
from gateway.domain.errors import UpstreamError
from yarl import URL

pytestmark = pytest.mark.infra


async def _backend() -> tuple[web.AppRunner, int]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "path": request.path,
                "raw_path": request.raw_path,
                "connection_header": request.headers.get("X-Hop"),
            },
            headers={"Connection": "X-Back-Hop", "X-Back-Hop": "1", "X-Kept": "yes"},
        )

    async def stall(request: web.Request) -> web.Response:
        await asyncio.Event().wait()  # never answers: the proxy's timeout must fire
        return web.Response()

    app = web.Application()
    app.router.add_get("/stall", stall)
    app.router.add_get("/{tail:.*}", echo)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def test_forwards_and_strips_backend_hop_by_hop_headers() -> None:
    runner, port = await _backend()
    proxy = Proxy()
    try:
        status, headers, body = await proxy.forward(
            "GET", URL(f"http://127.0.0.1:{port}/api/orders/1"), [], None, timeout_seconds=2
        )
        data = b"".join([chunk async for chunk in body])
        names = {k.lower() for k, _ in headers}
        assert status == 200
        assert b"/api/orders/1" in data
        assert "x-kept" in names
        assert "x-back-hop" not in names
        assert "connection" not in names
    finally:
        await proxy.close()
        await runner.cleanup()


@pytest.mark.parametrize(
    "path", ["/orders/%2e%2e/metrics", "/orders/../metrics", "/a/%7Eb/%C3%A9", "/a/./b"]
)
async def test_an_encoded_url_reaches_the_backend_byte_for_byte(path: str) -> None:
    """No second normalisation: what the gateway matched is what the backend gets."""
    runner, port = await _backend()
    proxy = Proxy()
    try:
        url = URL(f"http://127.0.0.1:{port}{path}?q=%20x", encoded=True)
        status, _, body = await proxy.forward("GET", url, [], None, timeout_seconds=2)
        data = json.loads(b"".join([chunk async for chunk in body]))
        assert status == 200
        assert data["raw_path"] == f"{path}?q=%20x"
    finally:
        await proxy.close()
        await runner.cleanup()


async def test_connection_refused_is_502() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = Proxy()
    try:
        with pytest.raises(UpstreamError) as caught:
            await proxy.forward(
                "GET", URL(f"http://127.0.0.1:{port}/"), [], None, timeout_seconds=2
            )
        assert caught.value.status == 502
    finally:
        await proxy.close()


async def test_backend_timeout_is_504() -> None:
    runner, port = await _backend()
    proxy = Proxy()
    try:
        with pytest.raises(UpstreamError) as caught:
            await proxy.forward(
                "GET", URL(f"http://127.0.0.1:{port}/stall"), [], None, timeout_seconds=0.2
            )
        assert caught.value.status == 504
    finally:
        await proxy.close()
        await runner.cleanup()


async def _event_backend(release: asyncio.Event) -> tuple[web.AppRunner, int]:
    """/events: one SSE frame at once, the second only after `release`; /stall: no headers."""

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: a\ndata: {}\n\n")
        await release.wait()
        await response.write(b"event: b\ndata: {}\n\n")
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/events", events)
    app.router.add_get("/stall", stall)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def test_an_event_stream_flows_unbuffered_past_the_timeout() -> None:
    """stream=True: each frame reaches the client as the backend sends it (nothing waits for
    the end), and the stream outlives timeout_seconds, which bounds the headers only."""
    release = asyncio.Event()
    runner, port = await _event_backend(release)
    proxy = Proxy()
    try:
        status, headers, body = await proxy.forward(
            "GET",
            URL(f"http://127.0.0.1:{port}/events"),
            [],
            None,
            timeout_seconds=0.3,
            stream=True,
        )
        assert status == 200
        assert ("Content-Type", "text/event-stream") in headers
        chunks = aiter(body)
        first = await asyncio.wait_for(anext(chunks), 2)
        assert first == b"event: a\ndata: {}\n\n"  # while the backend still holds the rest
        await asyncio.sleep(0.5)  # past timeout_seconds: a streamed body is not cut
        release.set()
        rest = b"".join([chunk async for chunk in chunks])
        assert rest == b"event: b\ndata: {}\n\n"
    finally:
        await proxy.close()
        await runner.cleanup()


async def test_without_stream_the_timeout_bounds_the_whole_body() -> None:
    release = asyncio.Event()
    runner, port = await _event_backend(release)
    proxy = Proxy()
    try:
        _, _, body = await proxy.forward(
            "GET", URL(f"http://127.0.0.1:{port}/events"), [], None, timeout_seconds=0.3
        )
        data = b"".join([chunk async for chunk in body])
        assert data == b"event: a\ndata: {}\n\n"  # cut at the deadline: the second never came
    finally:
        release.set()
        await proxy.close()
        await runner.cleanup()


async def test_a_stream_whose_headers_do_not_come_is_504() -> None:
    runner, port = await _event_backend(asyncio.Event())
    proxy = Proxy()
    try:
        with pytest.raises(UpstreamError) as caught:
            await proxy.forward(
                "GET",
                URL(f"http://127.0.0.1:{port}/stall"),
                [],
                None,
                timeout_seconds=0.3,
                stream=True,
            )
        assert caught.value.status == 504
    finally:
        await proxy.close()
        await runner.cleanup()
