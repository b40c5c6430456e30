"""Received spans: the OTLP trace payload (protobuf or OTLP/JSON) decoded into plain, frozen records,
and their tree order (a waterfall's rows). Pure decoding, no I/O: the devstack's receiver
(shop_devstack.traces) and the web service's console (web_service) both use it.

OTLP/JSON is the protobuf JSON mapping with two differences the OTLP spec makes: trace and span ids
are hex strings (not base64), and enums are integers. `decode_json` turns the ids into the protobuf
form before parsing, so both encodings go through the one `ExportTraceServiceRequest`.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


class BadPayload(ValueError):
    """The body is not an OTLP trace export in the encoding it claims."""


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver got it. Ids are lowercase hex; times are Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    status: str = "unset"
    status_message: str = ""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = _value(pair.value)
    return out


def _kind(span: Span) -> str:
    return Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower()


def _status(span: Span) -> str:
    return Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_").lower()


def spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Every span of an export request, with its resource's service.name."""
    received: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown_service"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                received.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        service=service,
                        kind=_kind(span),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        events=[(e.name, _attributes(e.attributes)) for e in span.events],
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        status=_status(span),
                        status_message=span.status.message,
                    )
                )
    return received


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadPayload("body is not a protobuf ExportTraceServiceRequest") from exc
    return request


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON ids are hex; the protobuf JSON mapping wants base64 for bytes fields."""
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
        return
    if not isinstance(node, dict):
        return
    for key, item in node.items():
        if key in _ID_KEYS and isinstance(item, str):
            try:
                node[key] = base64.b64encode(bytes.fromhex(item)).decode("ascii")
            except ValueError as exc:
                raise BadPayload(f"{key} is not a hex id") from exc
        else:
            _hex_ids_to_base64(item)


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload("body is not JSON") from exc
    if not isinstance(document, dict):
        raise BadPayload("body is not a JSON object")
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise BadPayload("body is not an OTLP/JSON ExportTraceServiceRequest") from exc
    return request


def tree_order(spans: Sequence[ReceivedSpan]) -> list[tuple[int, ReceivedSpan]]:
    """(depth, span) depth-first, children by start time; a span whose parent is not here is a
    root, and spans caught in a parent cycle (malformed input) come last, at depth 0."""
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children[parent].append(span)
    for group in children.values():
        group.sort(key=lambda s: (s.start_ns, s.end_ns))
    ordered: list[tuple[int, ReceivedSpan]] = []
    seen: set[int] = set()

    def visit(span: ReceivedSpan, depth: int) -> None:
        if id(span) in seen:
            return
        seen.add(id(span))
        ordered.append((depth, span))
        for child in children.get(span.span_id, []):
            visit(child, depth + 1)

    for root in children[None]:
        visit(root, 0)
    for span in sorted(spans, key=lambda s: s.start_ns):
        visit(span, 0)
    return ordered
