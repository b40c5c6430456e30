"""The demo's OTLP receiver: the real OpenTelemetry SDK exports to it over OTLP/HTTP and it hands the
spans back with their parent/child relations, links, events and resource; bad bodies get a 4xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from shop_devstack.traces import OtlpReceiver, ReceivedSpan
from shop_devstack.traces.background import BackgroundReceiver, start_preferring


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    async with OtlpReceiver(max_body_bytes=64 * 1024) as running:
        yield running


def _provider(receiver: OtlpReceiver, compression: Compression) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "order-service"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{receiver.endpoint}/v1/traces", compression=compression, timeout=5
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
async def test_sdk_spans_come_back_with_parent_links_events_and_service(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    provider = _provider(receiver, compression)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("earlier publish", kind=SpanKind.PRODUCER) as earlier:
        pass
    earlier_context = earlier.get_span_context()
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/orders")
        with tracer.start_as_current_span(
            "outbox relay", kind=SpanKind.CONSUMER, links=[Link(earlier_context)]
        ) as child:
            child.add_event("retry", {"attempt": 2, "queue": "payment.order-events"})
            child.set_status(Status(StatusCode.ERROR, "charge declined"))
    await asyncio.to_thread(provider.force_flush)
    await asyncio.to_thread(provider.shutdown)

    spans = await receiver.wait_for(lambda got: len(got) == 3, timeout=10)
    by_name = {span.name: span for span in spans}
    root_span, child_span = by_name["POST /orders"], by_name["outbox relay"]
    root_ctx = root.get_span_context()
    assert root_span.trace_id == format(root_ctx.trace_id, "032x")
    assert root_span.span_id == format(root_ctx.span_id, "016x")
    assert root_span.parent_span_id is None
    assert root_span.kind == "server"
    assert root_span.service == "order-service"
    assert root_span.attributes["http.route"] == "/orders"
    assert root_span.end_ns >= root_span.start_ns > 0
    assert child_span.trace_id == root_span.trace_id
    assert child_span.parent_span_id == root_span.span_id
    assert child_span.kind == "consumer"
    assert child_span.events == [("retry", {"attempt": 2, "queue": "payment.order-events"})]
    assert child_span.links == [
        (format(earlier_context.trace_id, "032x"), format(earlier_context.span_id, "016x"))
    ]
    assert (child_span.status, child_span.status_message) == ("error", "charge declined")
    assert by_name["earlier publish"].kind == "producer"
    assert receiver.trace(root_span.trace_id) == [
        s for s in spans if s.trace_id == root_span.trace_id
    ]


async def test_otlp_json_with_hex_ids_is_decoded(receiver: OtlpReceiver) -> None:
    trace_id, span_id, parent_id = (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
    )
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "parentSpanId": parent_id,
                                "name": "GET /api/users/{id}",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                                "links": [{"traceId": trace_id, "spanId": parent_id}],
                                "status": {"code": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{receiver.endpoint}/v1/traces", json=body)
    assert (response.status_code, response.headers["content-type"]) == (
        200,
        "application/json; charset=utf-8",
    )
    assert response.json() == {}
    assert receiver.spans() == [
        ReceivedSpan(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_id,
            name="GET /api/users/{id}",
            service="gateway",
            kind="server",
            start_ns=1544712660000000000,
            end_ns=1544712661000000000,
            attributes={"n": 7},
            links=[(trace_id, parent_id)],
            status="ok",
        )
    ]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-protobuf", b"\xff\xff\xff garbage", 400),
        ("application/json", b"{not json", 400),
        ("application/json", b"[1, 2]", 400),
        (
            "application/json",
            json.dumps(
                {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}
            ).encode(),
            400,
        ),
        ("application/json", json.dumps({"resourceSpans": "nope"}).encode(), 400),
        ("text/plain", b"hello", 415),
        ("application/x-protobuf", b"\x00" * (65 * 1024), 413),
    ],
    ids=[
        "garbage-protobuf",
        "garbage-json",
        "json-array",
        "non-hex-id",
        "wrong-shape",
        "text",
        "huge",
    ],
)
async def test_a_bad_body_is_a_4xx_and_the_receiver_keeps_serving(
    receiver: OtlpReceiver, content_type: str, body: bytes, status: int
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{receiver.endpoint}/v1/traces", content=body, headers={"content-type": content_type}
        )
        assert response.status_code == status
        assert "Traceback" not in response.text
        after = await client.post(
            f"{receiver.endpoint}/v1/traces",
            content=b"",
            headers={"content-type": "application/x-protobuf"},
        )
    assert after.status_code == 200
    assert receiver.spans() == []


async def test_metrics_and_logs_are_accepted_and_dropped(receiver: OtlpReceiver) -> None:
    async with httpx.AsyncClient() as client:
        for path in ("/v1/metrics", "/v1/logs"):
            response = await client.post(
                f"{receiver.endpoint}{path}",
                content=b"\x0a\x00",
                headers={"content-type": "application/x-protobuf"},
            )
            assert response.status_code == 200
        missing = await client.post(f"{receiver.endpoint}/v1/nothing", content=b"")
    assert missing.status_code == 404
    assert receiver.spans() == []


async def test_wait_for_names_what_it_had_when_it_gives_up(receiver: OtlpReceiver) -> None:
    with pytest.raises(TimeoutError, match="no spans"):
        await receiver.wait_for(lambda spans: bool(spans), timeout=0.05)


async def test_counting_mode_counts_without_keeping() -> None:
    async with OtlpReceiver(keep_spans=False) as counting:
        provider = _provider(counting, Compression.NoCompression)
        with provider.get_tracer("test").start_as_current_span("one"):
            pass
        await asyncio.to_thread(provider.shutdown)
        assert (counting.spans_received, counting.spans()) == (1, [])


async def test_a_background_receiver_serves_from_its_own_thread() -> None:
    with BackgroundReceiver() as background:
        provider = _provider(background, Compression.NoCompression)
        with provider.get_tracer("test").start_as_current_span("from the test's loop"):
            pass
        await asyncio.to_thread(provider.shutdown)
        spans = await background.wait_for(lambda got: len(got) == 1, timeout=10)
    assert [span.name for span in spans] == ["from the test's loop"]


def test_start_preferring_falls_back_to_an_ephemeral_port_when_taken() -> None:
    with BackgroundReceiver() as first:
        second = start_preferring(first.port)
        try:
            assert second.receiver.port not in (0, first.port)
        finally:
            second.stop()
