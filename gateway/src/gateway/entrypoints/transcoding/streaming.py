"""Streamed bodies that stop, and release their gRPC call, the moment the client leaves.

Starlette's StreamingResponse only watches for `http.disconnect` under ASGI < 2.4; under 2.4
(uvicorn) it notices a departed client only when a write fails, so a quiet event stream would
hold its task and its gRPC subscription until the next event. `ClientBoundStream` always races
the body against `http.disconnect` and runs `on_close` whichever way the response ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import Gauge
from shop_common.clients.user import UpdateStream, UserPage
from shop_common.web import problem_body
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.entrypoints.transcoding.status import problem_from

NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"
SSE_RETRY_MS = 3000
STREAMS_ACTIVE = Gauge(
    "gateway_transcoded_streams_active",
    "Open streamed responses of the transcoded user API (NDJSON lists, SSE subscriptions)",
    ["kind"],
)


class ClientBoundStream(StreamingResponse):
    """A StreamingResponse cancelled by the client's disconnect; `on_close` always runs once."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        kind: str,
        media_type: str | None = None,
        on_close: Callable[[], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._on_close = on_close
        self._closed = False
        self._gauge = STREAMS_ACTIVE.labels(kind)
        self._gauge.inc()  # counted from creation: on_close has been pending since then

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = asyncio.ensure_future(self.stream_response(send))
        gone = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({body, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (body, gone):
                task.cancel()
            results = await asyncio.gather(body, gone, return_exceptions=True)
            try:
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                self.close()
        # A write to a departed client (OSError) is a disconnect, not an error of ours.
        failure = results[0]
        if isinstance(failure, Exception) and not isinstance(failure, OSError):
            raise failure

    def close(self) -> None:
        """Run on_close and uncount the stream, once (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._gauge.dec()
        if self._on_close is not None:
            self._on_close()


class EventStreamResponse(ClientBoundStream):
    """ClientBoundStream of Server-Sent Events (its media type also documents the route)."""

    media_type = EVENT_STREAM


def _error_payload(exc: BaseException) -> dict[str, Any]:
    problem = problem_from(exc)
    if problem is None:
        raise exc
    return problem_body(
        problem.status, problem.title, problem.detail, extensions=problem.extensions
    )


async def ndjson_pages(
    first: UserPage, next_page: Callable[[str], Awaitable[UserPage]]
) -> AsyncIterator[bytes]:
    """One JSON user per line, page after page; a failure mid-stream ends with {"error": problem}."""
    page = first
    while True:
        if page.users:
            yield b"".join(json.dumps(u.to_dict()).encode() + b"\n" for u in page.users)
        if not page.next_page_token:
            return
        try:
            page = await next_page(page.next_page_token)
        except Exception as exc:
            yield json.dumps({"error": _error_payload(exc)}).encode() + b"\n"
            return


def sse_frame(event: str | None, data: Any, event_id: str | None = None) -> bytes:
    """One Server-Sent Event (JSON data on one line)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()


async def sse_updates(stream: UpdateStream, heartbeat_seconds: float) -> AsyncIterator[bytes]:
    """SSE frames of an attached subscription, with comment heartbeats while it is quiet.

    A heartbeat keeps idle proxies from closing the connection. The pending read is never
    cancelled by a heartbeat (cancelling a read would cancel the RPC); it is only cancelled
    when the stream ends. A failed end (e.g. the service lost its feed) becomes an `error`
    event after which the client resubscribes.
    """
    yield f"retry: {SSE_RETRY_MS}\n: subscribed\n\n".encode()
    pending: asyncio.Future[Any] | None = None
    sequence = 0
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(stream.next_event())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_seconds)
            if not done:
                yield b": keepalive\n\n"
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except Exception as exc:
                yield sse_frame("error", _error_payload(exc))
                return
            if event is None:
                return
            sequence += 1
            yield sse_frame(event.event_type, event.to_dict(), str(sequence))
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        stream.cancel()
