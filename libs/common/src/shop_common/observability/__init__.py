"""Tracing with the OpenTelemetry SDK: one trace per order across HTTP, gRPC, the outbox and
RabbitMQ, and the trace ids in the logs.

One entry point: each service's bootstrap calls `configure_tracing(service_name, settings)` and
pushes the returned `Tracing.aclose` on its exit stack. The settings (shop_common.settings) read
the standard variables:

- OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to `<it>/v1/traces` over
  OTLP/HTTP protobuf, through a BatchSpanProcessor (OTEL_BSP_* tune it, as the SDK reads them).
- OTEL_TRACES_SAMPLER (default parentbased_traceidratio) and OTEL_TRACES_SAMPLER_ARG (its
  ratio, default 1.0): a root span is sampled with that probability, the rest follow their
  parent; always_on, always_off, traceidratio and the parentbased_ forms are accepted.
- OTEL_SDK_DISABLED=true turns tracing off even with an endpoint.

With no endpoint (or the SDK disabled) tracing is off and costs nothing: no SDK provider is
installed and no library is instrumented, so no middleware, interceptor or wrapper runs on a
request, a query or a message. The API's no-op tracer remains: hand-written spans are
non-recording, and `span_event` and the log processor return after one context lookup. A
message then carries no `traceparent` (none is ever made up); a caller's trace context is not
forwarded by a service whose tracing is off, since nothing reads it.

What no instrumentation covers is written here and used by shop_common:
- the outbox: `outbox_row()` stores `trace_headers()` (traceparent, tracestate) in the row's
  headers column with the request id, and the relay publishes each row `continued_from` them,
  so the aio-pika publish span is a child of the span that wrote the row; the relay's own
  claims and marks run `untraced()`;
- AMQP: the aio-pika instrumentation injects the publish span into the message headers, and the
  consume span continues the trace from them; the consumer binds the message's request id;
- span events (`span_event`) for retries, breaker rejections, cache hits and misses, message
  retries, DLQ parking and replays;
- logs: shop_common.logging adds trace_id and span_id to a line written in a recording span;
- the gateway's server span is named after the route its pipeline matched
  (`name_request_span`: "POST /api/orders/**", with http.route), as its metrics label it.

What is not traced: a trace starts only at a client's request or at a consumed message.
Background work starts none: /health, /ready and /metrics (the readiness checks run
`untraced`), grpc.health.v1 calls, the ASGI middleware's internal send/receive spans, and
every loop that runs by itself runs `untraced()` (the relay's polls, the messaging monitor,
the saga-timeout sweeper, the user service's LISTEN connection and database health pings,
the cache-coherence subscriber, Consul registration, heartbeats and watches, migrations).
A relayed outbox row written without a trace context (by such work) is published untraced.
"""

from shop_common.observability.propagation import (
    TRACE_HEADERS,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    continued_from,
    current_trace_context,
    in_trace_context,
    name_request_span,
    span_attributes,
    span_event,
    span_exception,
    trace_headers,
    untraced,
)
from shop_common.observability.rpc import RpcServerSpan, RpcServerSpans, rpc_server_spans
from shop_common.observability.tracing import (
    Tracing,
    configure_tracing,
    instrument_fastapi,
    sampler_of,
    tracing_enabled,
)

__all__ = (
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "TRACE_HEADERS",
    "RpcServerSpan",
    "RpcServerSpans",
    "Tracing",
    "configure_tracing",
    "continued_from",
    "current_trace_context",
    "in_trace_context",
    "instrument_fastapi",
    "name_request_span",
    "rpc_server_spans",
    "sampler_of",
    "span_attributes",
    "span_event",
    "span_exception",
    "trace_headers",
    "tracing_enabled",
    "untraced",
)
