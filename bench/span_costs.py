"""What one span costs the process that makes it, measured in this process with the SDK the
services use: the part of bench_tracing that explains its GetUser ratio.

A traced GetUser carries two spans in the user server: its server span (RpcServerSpans, the
CallPipeline's) and the asyncpg instrumentation's span of the coalesced `id = ANY($1)` query
(one per batch; at the benchmark's load a batch holds about one read). Each span is started,
ended, handed to the span processor, and later encoded to OTLP protobuf on the export thread.
This measures those three steps, CPU time (time.process_time) over many repetitions:

  server_span   RpcServerSpans.start + end, with a W3C traceparent to extract;
  client_span   a CLIENT span made as the asyncpg instrumentation makes it
                (start_as_current_span with its eight attributes, db.statement included);
  encode        OTLP protobuf encoding per span, in batches of 512 (the BatchSpanProcessor's).

`model_ratio` turns them into the on/off ratio they predict for a call that costs `call_us`
of server CPU untraced: call / (call + spans' cost). bench_tracing prints that prediction beside
the measured ratio, so that a reader sees how much of the gap is the SDK's own per-span work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from shop_common.observability.rpc import RpcServerSpans

CARRIER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
METHOD = "/shop.user.v1.UserService/GetUser"
# What opentelemetry-instrumentation-asyncpg sets on a query's span (its _hydrate_span_from_args).
DB_ATTRIBUTES: dict[str, str | int] = {
    "db.system": "postgresql",
    "db.name": "user_service",
    "db.user": "postgres",
    "net.peer.name": "127.0.0.1",
    "net.peer.port": 5432,
    "net.transport": "ip_tcp",
    "db.statement": "SELECT id, email, name, roles, created_at, updated_at FROM users "
    "WHERE id = ANY($1::bigint[])",
}


class _Keep(SpanExporter):
    """Keeps the ended spans (for the encoding step); exports nothing."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.spans.clear()


@dataclass(frozen=True)
class SpanCosts:
    """CPU microseconds per span for each step."""

    server_span_us: float
    client_span_us: float
    encode_us: float

    def per_call_us(self, spans_per_call: float = 2.0) -> float:
        """What a GetUser's spans cost: its server span, (spans_per_call - 1) query spans, and
        the encoding of all of them."""
        queries = max(spans_per_call - 1.0, 0.0)
        return self.server_span_us + queries * self.client_span_us + spans_per_call * self.encode_us


def _cpu_us_per(repeat: int, step: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(repeat):
        step()
    return (time.process_time() - started) / repeat * 1e6


def measure(repeat: int = 20_000) -> SpanCosts:
    """Each step's CPU cost per span, best of three passes (the least disturbed by other load)."""
    kept = _Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "user-service"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    server = RpcServerSpans(provider.get_tracer("bench.server"))
    client = provider.get_tracer("bench.asyncpg")

    def server_span() -> None:
        server.start(METHOD, CARRIER).end("OK")

    def client_span() -> None:
        with client.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes=DB_ATTRIBUTES):
            pass

    server_us = min(_cpu_us_per(repeat, server_span) for _ in range(3))
    client_us = min(_cpu_us_per(repeat, client_span) for _ in range(3))
    batch = kept.spans[-512:]
    encode_us = min(
        _cpu_us_per(20, lambda: encode_spans(batch).SerializeToString()) / len(batch)
        for _ in range(3)
    )
    provider.shutdown()
    return SpanCosts(round(server_us, 1), round(client_us, 1), round(encode_us, 1))


def model_ratio(call_us: float, costs: SpanCosts, spans_per_call: float = 2.0) -> float:
    """The on/off ratio of a CPU-bound server whose untraced call costs `call_us`."""
    return round(call_us / (call_us + costs.per_call_us(spans_per_call)), 3)
