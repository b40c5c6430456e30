"""POST /v1/traces: an OTLP/HTTP trace receiver (protobuf or JSON), for the console's waterfall
of the last order. Services send here when their OTEL_EXPORTER_OTLP_ENDPOINT is the web
service's address (e.g. `make up UP_ARGS="--set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8004"`).

Not routed by the gateway (an internal endpoint, like /metrics); the decoding is
shop_common.observability.otlp's. A payload that is not an OTLP export is a 400 problem.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from shop_common.observability.otlp import BadPayload, decode_json, decode_protobuf, spans_of
from shop_common.web import ProblemError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

traces_router = APIRouter(include_in_schema=False)


@traces_router.post("/v1/traces")
async def receive_traces(request: Request) -> Response:
    """Decode one export and keep its spans (TraceBook)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (PROTOBUF, "application/protobuf", JSON):
        raise ProblemError(
            415, detail="an OTLP export is application/x-protobuf or application/json"
        )
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise ProblemError(415, detail="send the export uncompressed")
    body = await request.body()
    try:
        export = decode_json(body) if media == JSON else decode_protobuf(body)
        spans = spans_of(export)
    except BadPayload as exc:
        raise ProblemError(400, detail=str(exc)[:200]) from exc
    app = getattr(request.app.state, "app", None)
    if app is None:
        raise ProblemError(503, detail="the service is starting", headers={"Retry-After": "1"})
    app.traces.add(spans)
    if media == JSON:
        return Response(b"{}", media_type=JSON)
    return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)
