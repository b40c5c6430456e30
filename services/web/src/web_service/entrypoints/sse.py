"""Server-Sent Events: frames, keep-alive comments, and the streaming response.

The pages read these streams with fetch() and a ReadableStream (an EventSource cannot send the
Authorization header), so the stream is an ordinary authenticated GET.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def frame(event: str, data: Mapping[str, Any]) -> bytes:
    """One `event:` + one-line JSON `data:` frame."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _with_keepalive(
    frames: AsyncIterator[bytes], keepalive_seconds: float
) -> AsyncIterator[bytes]:
    """frames, with a `: keepalive` comment whenever none came for keepalive_seconds."""
    iterator = frames.__aiter__()
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=keepalive_seconds)
            if not done:
                yield b": keepalive\n\n"
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


def event_stream(frames: AsyncIterator[bytes], keepalive_seconds: float) -> StreamingResponse:
    """A text/event-stream response of frames (Starlette ends it when the client leaves)."""
    return StreamingResponse(
        _with_keepalive(frames, keepalive_seconds),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
