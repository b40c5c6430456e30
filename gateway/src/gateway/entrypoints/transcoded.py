"""Handing a request to the FastAPI app (the transcoding router), streamed or captured."""

from __future__ import annotations

from typing import overload

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.entrypoints.replies import Reply


@overload
async def call_app(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None: ...
@overload
async def call_app(app: ASGIApp, scope: Scope, receive: Receive, send: None) -> Reply: ...


async def call_app(app: ASGIApp, scope: Scope, receive: Receive, send: Send | None) -> Reply | None:
    """Run app; with send, stream its answer to the client; without, return it as a Reply."""
    if send is not None:
        await app(scope, receive, send)
        return None
    status = 500
    headers: list[tuple[str, str]] = []
    parts: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
            ]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, capture)
    return Reply(status, headers, b"".join(parts))
