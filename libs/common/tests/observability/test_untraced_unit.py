"""What is not traced, without infrastructure: probes and scrapes, the ASGI middleware's internal
send/receive spans, grpc.health.v1 calls, background work; and the route name a proxy gives its
server span."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import grpc
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from shop_common.observability import (
    continued_from,
    instrument_fastapi,
    name_request_span,
    untraced,
)
from shop_common.observability.tracing import grpc_call_filter
from shop_common.settings import ServiceSettings
from shop_common.web import instrument_app


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A recording provider of the test's own (the global one is left alone)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


async def test_probes_scrapes_and_internal_send_receive_make_no_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    probed: list[bool] = []

    async def check() -> bool:
        probed.append(is_instrumentation_enabled())  # what a query or ping in it would see
        return True

    app = instrument_app(FastAPI(), checks={"dependency": check})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/api/health")
    async def not_a_probe() -> dict[str, str]:
        return {}

    settings = ServiceSettings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318")
    instrument_fastapi(app, settings, tracer_provider=provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for path in ("/health", "/ready", "/metrics", "/items/7", "/api/health"):
            assert (await client.get(path)).status_code == 200, path
    assert probed == [False]  # the readiness check ran untraced
    spans = exporter.get_finished_spans()
    assert [(s.name, s.kind) for s in spans] == [
        ("GET /items/{item_id}", SpanKind.SERVER),
        ("GET /api/health", SpanKind.SERVER),  # only the exact probe paths are left out
    ]


def test_grpc_health_checks_are_not_traced_other_calls_are() -> None:
    traced = grpc_call_filter()
    # What the server interceptor gets (HandlerCallDetails) and what the client's does.
    assert not traced(SimpleNamespace(method="/grpc.health.v1.Health/Check"))
    assert not traced(SimpleNamespace(method="/grpc.health.v1.Health/Watch"))
    assert traced(SimpleNamespace(method="/shop.user.v1.UserService/GetUser"))
    client_call = grpc.aio.ClientCallDetails(
        method=b"/grpc.health.v1.Health/Check",
        timeout=None,
        metadata=None,
        credentials=None,
        wait_for_ready=None,
    )
    assert not traced(client_call)


async def test_untraced_work_and_its_tasks_record_nothing_a_restored_context_does() -> None:
    async def enabled() -> bool:
        return is_instrumentation_enabled()

    assert is_instrumentation_enabled()
    with untraced():
        assert not await asyncio.create_task(enabled())  # a background loop's tasks too
        with continued_from({}):  # a relayed row's publish: traced again
            assert is_instrumentation_enabled()
    assert is_instrumentation_enabled()


def test_a_proxy_names_the_server_span_after_its_route(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    name_request_span("POST", "/api/orders/**")  # no span: nothing to name, no failure
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST", kind=SpanKind.SERVER):
        name_request_span("POST", "/api/orders/**")
    [span] = exporter.get_finished_spans()
    assert span.name == "POST /api/orders/**"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/orders/**"
