"""Request id and W3C trace context carried in message headers.

The request id comes from structlog's contextvars (bound by the HTTP and gRPC entrypoints and
by the consumer); traceparent and tracestate from the current OpenTelemetry span, and only when
there is one (shop_common.observability): a message never carries a made-up trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import structlog

from shop_common.observability.propagation import TRACEPARENT_HEADER, trace_headers

REQUEST_ID_HEADER = "x-request-id"

__all__ = ("REQUEST_ID_HEADER", "TRACEPARENT_HEADER", "context_headers", "message_context")


def context_headers() -> dict[str, str]:
    """Headers for the current request: x-request-id when bound in contextvars, and the
    current span's traceparent/tracestate when a span is active."""
    headers = trace_headers()
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        headers[REQUEST_ID_HEADER] = str(request_id)
    return headers


@contextmanager
def message_context(headers: Mapping[str, object], event_id: str) -> Iterator[None]:
    """Bind the message's request id (x-request-id; when it has one) and event id in
    structlog's contextvars for the block: its log lines, and the events it writes to the
    outbox, carry them on."""
    request_id = headers.get(REQUEST_ID_HEADER)
    bound: dict[str, object] = {"event_id": event_id}
    if request_id:
        bound["request_id"] = str(request_id)
    with structlog.contextvars.bound_contextvars(**bound):
        yield
