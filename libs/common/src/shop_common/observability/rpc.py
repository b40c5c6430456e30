"""gRPC server spans started by a server's own interceptor (the user service's CallPipeline).

The grpc.aio server instrumentation (GrpcAioInstrumentorServer) adds a second interceptor, which
builds a new wrapped handler for every call and hands the servicer a wrapt proxy of its context;
with it GetUser's server CPU nearly doubled (bench/bench_tracing.py: ~340 -> ~720 us per call,
of which the span itself, started and exported, is ~50 us). `RpcServerSpans` makes the same
span in the interceptor that already runs on every call: named after the full method
("/shop.user.v1.UserService/GetUser"), kind SERVER, attributes rpc.system, rpc.service,
rpc.method and rpc.grpc.status_code, status ERROR for the codes the instrumentation counts as
server errors, a child of the caller's span when the metadata carries `traceparent` (W3C),
a root otherwise.

Built only when tracing is on (`rpc_server_spans(tracing)` is None when it is off), so an
untraced server pays one `is None` test per call.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shop_common.observability.propagation import TRACEPARENT_HEADER

# The status codes a server span marks as an error (as opentelemetry-instrumentation-grpc's
# _server_status does; client faults such as NOT_FOUND or INVALID_ARGUMENT are not the server's).
SERVER_ERROR_CODES = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
# grpc.StatusCode's numbers by name (rpc.grpc.status_code is the number), without importing grpc.
STATUS_NUMBERS = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
_W3C = TraceContextTextMapPropagator()


class RpcServerSpan:
    """One call's server span, current in the call's context until `end`."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self._token = token

    def end(self, status: str, details: str | None = None) -> None:
        """Record the call's status (a grpc.StatusCode name), end the span and make the
        caller's context current again."""
        span = self.span
        span.set_attribute("rpc.grpc.status_code", STATUS_NUMBERS.get(status, 2))
        if status in SERVER_ERROR_CODES:
            span.set_status(Status(StatusCode.ERROR, f"StatusCode.{status}:{details or ''}"))
        span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]


class RpcServerSpans:
    """Starts the server span of each traced call (see the module docstring)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        # Attributes by full method, built once: "/pkg.Service/Method" -> service, method.
        self._attributes: dict[str, dict[str, str | int]] = {}

    def start(self, method: str, carrier: Mapping[str, str]) -> RpcServerSpan:
        """Start the span of a call to `method` and make it current; `carrier` holds the
        call's traceparent/tracestate metadata (empty: the span is a root)."""
        parent = (
            _W3C.extract(carrier, context=Context()) if TRACEPARENT_HEADER in carrier else Context()
        )
        attributes = self._attributes.get(method)
        if attributes is None:
            service, _, name = method.lstrip("/").partition("/")
            attributes = self._attributes[method] = {
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": name,
            }
        span = self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        return RpcServerSpan(span, otel_context.attach(trace.set_span_in_context(span, parent)))


def rpc_server_spans(tracer_provider: trace.TracerProvider | None) -> RpcServerSpans | None:
    """Server spans from `tracer_provider` (a configured Tracing's provider); None when tracing
    is off (no provider)."""
    if tracer_provider is None:
        return None
    return RpcServerSpans(tracer_provider.get_tracer("shop_common.observability.rpc"))
