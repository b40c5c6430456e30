"""Request body size limit as pure ASGI middleware, answering 413 problem+json."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.web.problems import ProblemError, problem_response


class BodyTooLargeError(ProblemError):
    """The request body passed the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body exceeds {limit} bytes")


class BodySizeLimitMiddleware:
    """Refuses bodies over max_bytes: at once by Content-Length, or while a chunked body streams.

    A streamed body that passes the limit raises BodyTooLargeError from `receive`; the app's
    problem handler answers it, or this middleware does when the app let it escape.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reject(scope, receive, send, self.max_bytes)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await _reject(scope, receive, send, self.max_bytes)


async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    # Connection: close, because the unread rest of the body cannot be skipped cheaply.
    response = problem_response(
        Request(scope),
        413,
        detail=f"request body exceeds {limit} bytes",
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
