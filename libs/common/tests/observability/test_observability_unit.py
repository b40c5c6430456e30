"""The tracing pieces without infrastructure: settings, the off switch, span events, log ids."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBasedTraceIdRatio
from opentelemetry.trace import Tracer
from pydantic import ValidationError
from shop_common.cache.metrics import lookup_counters
from shop_common.logging import _add_trace_ids
from shop_common.messaging.context import context_headers, message_context
from shop_common.observability import (
    configure_tracing,
    continued_from,
    sampler_of,
    span_event,
    trace_headers,
    tracing_enabled,
)
from shop_common.resilience import BreakerConfig, CircuitBreaker, CircuitOpenError
from shop_common.resilience.retry import RetryPolicy, retry_call
from shop_common.settings import ServiceSettings


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    """A recording tracer of its own provider (the global one is left alone)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


def events(span: ReadableSpan) -> dict[str, dict[str, object]]:
    return {event.name: dict(event.attributes or {}) for event in span.events}


def test_tracing_is_off_without_an_endpoint_or_when_the_sdk_is_disabled() -> None:
    assert not tracing_enabled(ServiceSettings())
    assert tracing_enabled(ServiceSettings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318"))
    assert not tracing_enabled(
        ServiceSettings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318", otel_sdk_disabled=True)
    )


def test_off_installs_no_provider_and_instruments_nothing() -> None:
    tracing = configure_tracing("test-service", ServiceSettings())
    assert not tracing.enabled
    assert not AioPikaInstrumentor().is_instrumented_by_opentelemetry


def test_the_sampler_is_parent_based_ratio_by_default_and_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    sampler = sampler_of(ServiceSettings())
    assert isinstance(sampler, ParentBasedTraceIdRatio)
    assert "0.25" in sampler.get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert sampler_of(ServiceSettings()) is ALWAYS_OFF
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.5")
    with pytest.raises(ValidationError):
        ServiceSettings()


def test_without_a_span_no_trace_context_is_made_up() -> None:
    assert trace_headers() == {}
    assert "traceparent" not in context_headers()


def test_trace_headers_name_the_current_span_and_continue_from_them(tracer: Tracer) -> None:
    with tracer.start_as_current_span("request") as request:
        headers = trace_headers()
    context = request.get_span_context()
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled
    with continued_from(headers), tracer.start_as_current_span("publish") as publish:
        pass
    assert publish.parent is not None
    assert publish.parent.span_id == context.span_id
    assert publish.get_span_context().trace_id == context.trace_id


def test_a_message_binds_its_request_id_and_event_id_for_the_logs() -> None:
    import structlog

    with message_context({"x-request-id": "req-7"}, "evt-1"):
        bound = structlog.contextvars.get_contextvars()
        assert bound["request_id"] == "req-7"
        assert bound["event_id"] == "evt-1"
        assert context_headers()["x-request-id"] == "req-7"  # carried on to what it publishes
    assert "request_id" not in structlog.contextvars.get_contextvars()


def test_log_lines_in_a_recording_span_carry_its_trace_and_span_ids(tracer: Tracer) -> None:
    assert "trace_id" not in _add_trace_ids(None, "info", {})
    with tracer.start_as_current_span("work") as span:
        line = _add_trace_ids(None, "info", {"event": "x"})
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_a_non_recording_span_gets_no_ids_and_no_events() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    with provider.get_tracer("test").start_as_current_span("unsampled"):
        assert "trace_id" not in _add_trace_ids(None, "info", {})
        span_event("ignored")  # nothing to record into; must not fail


async def test_a_retry_is_an_event_on_the_current_span(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("first attempt fails")
        return "ok"

    async def no_sleep(_: float) -> None:
        return None

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with tracer.start_as_current_span("call"):
        assert await retry_call(policy, flaky, sleep=no_sleep, rng=random.Random(1)) == "ok"
    [span] = exporter.get_finished_spans()
    retry = events(span)["retry"]
    assert retry["retry.attempt"] == 1
    assert retry["retry.error"] == "ConnectionError"


async def test_a_breaker_rejection_is_an_event_on_the_current_span(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    breaker = CircuitBreaker("traced", BreakerConfig(consecutive_failures=1))
    breaker.force_open()

    async def call() -> None:
        return None

    with tracer.start_as_current_span("call"), pytest.raises(CircuitOpenError):
        await breaker.call(call)
    [span] = exporter.get_finished_spans()
    assert events(span)["breaker.rejected"] == {
        "breaker.name": "traced",
        "breaker.state": "forced_open",
    }


def test_cache_lookups_mark_the_current_span(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    hit1, _, miss1, _ = lookup_counters("traced-cache")
    with tracer.start_as_current_span("lookup"):
        miss1.inc()
        hit1.inc()
    [span] = exporter.get_finished_spans()
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("cache.miss", {"cache.name": "traced-cache", "cache.level": "l1"}),
        ("cache.hit", {"cache.name": "traced-cache", "cache.level": "l1"}),
    ]


def test_rpc_server_span_is_current_until_it_ends_and_numbers_codes_as_grpc_does(
    exporter: InMemorySpanExporter,
) -> None:
    import grpc
    from opentelemetry import trace
    from shop_common.observability import rpc_server_spans
    from shop_common.observability.rpc import STATUS_NUMBERS

    assert {code.name: code.value[0] for code in grpc.StatusCode} == STATUS_NUMBERS
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = rpc_server_spans(provider)
    assert spans is not None
    before = trace.get_current_span()
    call = spans.start("/pkg.Svc/Method", {})
    assert trace.get_current_span() is call.span
    call.end("INTERNAL", "internal error")
    assert trace.get_current_span() is before
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 13
    assert span.status.description == "StatusCode.INTERNAL:internal error"
    provider.shutdown()
