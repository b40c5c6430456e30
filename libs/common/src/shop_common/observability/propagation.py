"""W3C trace context in carriers (message headers, outbox rows) and span events, on the
OpenTelemetry API only: no SDK import, and nothing done when no span is recording.

With tracing off (shop_common.observability.tracing) the current span is the API's invalid
span: `trace_headers()` returns {} and `span_event()` returns after one context lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.util.types import AttributeValue

TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"
TRACE_HEADERS = frozenset({TRACEPARENT_HEADER, TRACESTATE_HEADER})


def trace_headers() -> dict[str, str]:
    """The current span's W3C context (traceparent, tracestate when set) as headers; {} when
    there is no valid span: a carrier never gets a made-up trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {key: value for key, value in carrier.items() if key in TRACE_HEADERS}


@contextmanager
def continued_from(headers: Mapping[str, Any]) -> Iterator[None]:
    """Run the block in the trace context stored in `headers` (traceparent/tracestate), in a
    fresh context otherwise: what the block starts is a child of the span that stored them."""
    carrier = {k: v for k, v in headers.items() if k in TRACE_HEADERS and isinstance(v, str)}
    token = otel_context.attach(propagate.extract(carrier, context=otel_context.Context()))
    try:
        yield
    finally:
        otel_context.detach(token)


def current_trace_context() -> otel_context.Context:
    """The current trace context (one context lookup), for work done later on its behalf by
    another task: run that work `in_trace_context` of it."""
    return otel_context.get_current()


@contextmanager
def in_trace_context(context: otel_context.Context) -> Iterator[None]:
    """Run the block in a context taken by `current_trace_context` (what it starts is a child
    of the span current there)."""
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def untraced() -> Iterator[None]:
    """Instrumentations record nothing in the block, nor in the tasks it starts: background work
    (probes, polls, pings, heartbeats, samplers, sweeps) would otherwise start one root trace
    per round. `continued_from` inside it traces again (a relayed row's publish)."""
    with suppress_instrumentation():
        yield


def span_event(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
    """Add an event to the current span when it records; otherwise do nothing."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes)


def span_exception(exc: BaseException) -> None:
    """Record an exception (type, message, traceback) on the current span when it records."""
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)


def name_request_span(method: str, route: str) -> None:
    """Name the current (server) span "<METHOD> <route>" and set its http.route, when it
    records: for a route matched outside the web framework's router (the gateway's pipeline)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute(HTTP_ROUTE, route)


def span_attributes(attributes: Mapping[str, AttributeValue]) -> None:
    """Set attributes on the current span when it records; otherwise do nothing."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)
