"""Request context as pure ASGI middleware: request id, structlog binding, access log, last-resort 500."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.logging import get_logger
from shop_common.web.problems import problem_response
from shop_common.web.routes import route_template

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is echoed into logs and headers, so only short, inert values are trusted.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_access_log = get_logger("shop.http.access")
# On every response: a browser must never sniff a JSON or problem body into HTML or script.
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def new_request_id() -> str:
    """A fresh request id (32 hex characters, 128 random bits)."""
    return os.urandom(16).hex()


def request_id_from(scope: Scope, header: str = REQUEST_ID_HEADER) -> str | None:
    """The caller's request id when it is present and safe to reuse."""
    wanted = header.lower().encode("latin-1")
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            candidate: str = value.decode("latin-1")
            return candidate if _SAFE_REQUEST_ID.match(candidate) else None
    return None


class RequestContextMiddleware:
    """Gives every request an id (propagated or new), binds it for logs, logs one access line.

    The id is in `request.state.request_id`, in structlog's contextvars as `request_id`
    while the request runs, and in the response's X-Request-ID header. Every response also
    carries `X-Content-Type-Options: nosniff` (replacing any copy a proxied backend sent). An exception that
    escapes the app is logged with its traceback and answered with a bare 500 problem.
    Requests to `quiet_paths` (probes, scrapes) are logged at debug level. `logger` replaces
    the structlog logger "shop.http.access".
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str = REQUEST_ID_HEADER,
        quiet_paths: Iterable[str] = ("/health", "/metrics"),
        logger: Any = None,
    ) -> None:
        self.app = app
        self.header = header
        self._header_key = header.lower().encode("latin-1")
        self.quiet_paths = frozenset(quiet_paths)
        self.log = logger if logger is not None else _access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope, self.header) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status: int | None = None
        started = time.perf_counter()

        header_key = self._header_key
        id_value = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Replace, never duplicate, an id the app (e.g. a proxied backend) already set.
                headers = [
                    h
                    for h in message.get("headers", ())
                    if h[0].lower() not in (header_key, _NOSNIFF[0])
                ]
                headers.append((header_key, id_value))
                headers.append(_NOSNIFF)
                message["headers"] = headers
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            self.log.error("unhandled_exception", path=scope.get("path"), exc_info=exc)
            if status is not None:
                raise  # the response is under way; only a broken connection can say so now
            response = problem_response(Request(scope), 500)
            await response(scope, receive, send_with_id)
        finally:
            self._log_access(scope, status, time.perf_counter() - started)
            structlog.contextvars.reset_contextvars(**tokens)

    def _log_access(self, scope: Scope, status: int | None, seconds: float) -> None:
        path = scope.get("path", "")
        client = scope.get("client")
        state = scope.get("state", {})
        principal = state.get("principal")
        log = self.log.debug if path in self.quiet_paths else self.log.info
        log(
            "http_request",
            method=scope.get("method"),
            path=path,
            route=route_template(scope),
            # No status means the client went away (or the task was cancelled) before one was sent.
            status=status if status is not None else 499,
            duration_ms=round(seconds * 1000, 2),
            client=client[0] if client else None,
            subject=getattr(principal, "subject", None),
        )
