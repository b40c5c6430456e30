"""Bounds on what one request may make the gateway hold and forward (OWASP API4, the front
door's share): the request target (414), the header fields (431) and a body that trickles (408).
The limits are settings (gateway.settings); their defaults are in gateway.domain.bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from shop_common.web import ProblemError, problem_response
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.domain.bounds import (
    BODY_IDLE_SECONDS,
    BODY_TOTAL_SECONDS,
    MAX_HEADER_BYTES,
    MAX_HEADER_FIELDS,
    MAX_TARGET_BYTES,
)


class RequestTimeoutError(ProblemError):
    """The client stopped sending its request body (a slow-loris body) → 408."""

    def __init__(self) -> None:
        super().__init__(408, detail="the request body did not arrive in time")


class RequestBoundsMiddleware:
    """Refuses an oversized request head (414, 431) and a body that trickles in (408).

    A body's messages must each arrive within `body_idle_seconds` and all of them within
    `body_total_seconds`; once the body is complete, `receive` is passed through untimed (the
    streaming responses wait on it for the client's disconnect). Pure ASGI, like the rest.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_target_bytes: int = MAX_TARGET_BYTES,
        max_header_fields: int = MAX_HEADER_FIELDS,
        max_header_bytes: int = MAX_HEADER_BYTES,
        body_idle_seconds: float = BODY_IDLE_SECONDS,
        body_total_seconds: float = BODY_TOTAL_SECONDS,
    ) -> None:
        self.app = app
        self.max_target_bytes = max_target_bytes
        self.max_header_fields = max_header_fields
        self.max_header_bytes = max_header_bytes
        self.body_idle_seconds = body_idle_seconds
        self.body_total_seconds = body_total_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if target > self.max_target_bytes:
            await _refuse(scope, receive, send, 414, "the request target is too long")
            return
        fields = scope.get("headers", ())
        if len(fields) > self.max_header_fields:
            await _refuse(scope, receive, send, 431, "too many header fields")
            return
        if sum(len(n) + len(v) for n, v in fields) > self.max_header_bytes:
            await _refuse(scope, receive, send, 431, "the header fields are too large")
            return
        if not _has_body(fields):
            # Nothing to wait for (a GET, a HEAD): no timed receive, no wrapper on the hot path.
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_total_seconds
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            wait = min(self.body_idle_seconds, deadline - loop.time())
            try:
                async with asyncio.timeout(max(wait, 0.0)):  # no task per message, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise RequestTimeoutError from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except RequestTimeoutError:
            if started:
                raise
            await _refuse(scope, receive, send, 408, "the request body did not arrive in time")


def _has_body(fields: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when the request announces a body: a Content-Length above 0 or a Transfer-Encoding."""
    for name, value in fields:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    # Connection: close: what the client has not sent yet (or sent too much of) is not read.
    response = problem_response(
        Request(scope), status, detail=detail, headers={"Connection": "close"}
    )
    await response(scope, receive, send)
