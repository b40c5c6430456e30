"""Request id and W3C trace context carried in message headers (read from structlog contextvars)."""

from __future__ import annotations

import os

import structlog

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"


def new_traceparent() -> str:
    """A fresh W3C traceparent (version 00, random trace and span ids, sampled)."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def context_headers() -> dict[str, str]:
    """Headers for the current request: x-request-id and traceparent when bound in contextvars."""
    bound = structlog.contextvars.get_contextvars()
    headers: dict[str, str] = {}
    request_id = bound.get("request_id")
    if request_id:
        headers[REQUEST_ID_HEADER] = str(request_id)
    traceparent = bound.get("traceparent")
    if traceparent:
        headers[TRACEPARENT_HEADER] = str(traceparent)
    return headers
