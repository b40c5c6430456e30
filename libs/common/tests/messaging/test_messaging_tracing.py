"""One trace through the outbox and RabbitMQ, on real PostgreSQL and RabbitMQ: the row stores
the writer's context, the relay publishes as its child, the consumer continues the trace; a
retry and a DLQ parking are events on the consume spans.

The aio-pika instrumentation runs here with a provider of the test's own (InMemorySpanExporter),
as configure_tracing installs it in a service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import structlog
from aio_pika.abc import AbstractRobustConnection
from opentelemetry import trace
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from shop_common.messaging import (
    INBOX_DDL,
    OUTBOX_DDL,
    Consumer,
    DeliveryInfo,
    EventEnvelope,
    OutboxRelay,
    PaymentFailed,
    PermanentError,
    Publisher,
    new_event,
    outbox_row,
)
from shop_testing.wait import eventually
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .conftest import FAST_TOPOLOGY, queue_depth

pytestmark = pytest.mark.infra

QUEUE = "order.payment-results"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    try:
        yield spans
    finally:
        AioPikaInstrumentor().uninstrument()
        provider.shutdown()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("request")


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url, pool_size=5)
    async with eng.begin() as conn:
        for statement in [*OUTBOX_DDL, *INBOX_DDL]:
            await conn.execute(text(statement))
    yield eng
    await eng.dispose()


def failed_payment() -> EventEnvelope:
    return new_event("payment.failed", PaymentFailed(order_id=uuid.uuid4(), reason="declined"))


def only(spans: list[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is kind]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_outbox_row_relay_publish_and_consume_are_one_trace(
    engine: AsyncEngine,
    connection: AbstractRobustConnection,
    exporter: InMemorySpanExporter,
    tracer: trace.Tracer,
) -> None:
    handled: list[tuple[trace.SpanContext, str | None]] = []

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        bound = structlog.contextvars.get_contextvars()
        handled.append((trace.get_current_span().get_span_context(), bound.get("request_id")))

    worker = Consumer(connection, QUEUE, handler, topology=FAST_TOPOLOGY)
    await worker.start()
    event = failed_payment()
    structlog.contextvars.bind_contextvars(request_id="req-traced")
    try:
        with tracer.start_as_current_span("POST /api/orders", kind=SpanKind.SERVER) as request:
            async with engine.begin() as conn:
                row = outbox_row(event, exchange="payments", aggregate_id="a")
                await row.insert(conn)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    writer = request.get_span_context()
    assert row.headers["traceparent"].split("-")[1:3] == [
        f"{writer.trace_id:032x}",
        f"{writer.span_id:016x}",
    ]
    # The relay runs outside any request (its own task): it restores the row's context.
    relay = OutboxRelay(engine, Publisher(connection), poll_interval=0.05)
    await relay.start()
    try:
        await eventually(lambda: len(handled) == 1, what="the event to be consumed")
    finally:
        await relay.stop()
        await worker.stop()

    spans = exporter.get_finished_spans()
    [publish] = only(list(spans), SpanKind.PRODUCER)
    [consume] = only(list(spans), SpanKind.CONSUMER)
    assert {s.context.trace_id for s in (publish, consume)} == {writer.trace_id}
    assert parent_of(publish) == writer.span_id  # the relay's publish: a child of the writer
    assert parent_of(consume) == publish.context.span_id  # through the AMQP headers
    context, request_id = handled[0]
    assert context.span_id == consume.context.span_id  # the handler runs in the consume span
    assert request_id == "req-traced"  # bound again from x-request-id


async def test_a_retry_and_a_dlq_parking_are_events_of_one_trace(
    connection: AbstractRobustConnection,
    exporter: InMemorySpanExporter,
    tracer: trace.Tracer,
) -> None:
    attempts: list[int] = []

    async def fails_then_refuses(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        attempts.append(info.attempt)
        if info.attempt == 1:
            raise RuntimeError("provider timeout")
        raise PermanentError("card blocked")

    worker = Consumer(connection, QUEUE, fails_then_refuses, topology=FAST_TOPOLOGY)
    await worker.start()
    with tracer.start_as_current_span("publish request") as request:
        await Publisher(connection).publish("payments", failed_payment())
    try:
        await eventually(
            lambda: queue_depth(connection, f"{QUEUE}.dlq"), what="the message in the DLQ"
        )
    finally:
        await worker.stop()
    assert attempts == [1, 2]

    consumes = sorted(
        only(list(exporter.get_finished_spans()), SpanKind.CONSUMER), key=lambda s: s.start_time
    )
    assert len(consumes) == 2
    assert {s.context.trace_id for s in consumes} == {request.get_span_context().trace_id}
    first, second = ({e.name: dict(e.attributes or {}) for e in s.events} for s in consumes)
    assert first["message.retry"] == {"queue": QUEUE, "attempt": 1, "tier": 0}
    assert second["message.dead_lettered"] == {"queue": f"{QUEUE}.dlq", "attempt": 2}
    assert consumes[1].attributes is not None
    assert consumes[1].attributes["messaging.attempt"] == 2


async def test_a_row_written_outside_a_trace_is_published_untraced(
    engine: AsyncEngine,
    connection: AbstractRobustConnection,
    exporter: InMemorySpanExporter,
) -> None:
    """Background work (a saga-timeout sweep) writes its rows outside any span: the relay
    publishes them without a span and traceparent, and the consumer starts the trace."""
    seen: list[object] = []

    async def handler(envelope: EventEnvelope, info: DeliveryInfo) -> None:
        seen.append(info.headers.get("traceparent"))

    worker = Consumer(connection, QUEUE, handler, topology=FAST_TOPOLOGY)
    await worker.start()
    async with engine.begin() as conn:
        row = outbox_row(failed_payment(), exchange="payments", aggregate_id="swept")
        await row.insert(conn)
    assert "traceparent" not in row.headers
    relay = OutboxRelay(engine, Publisher(connection), poll_interval=0.05)
    await relay.start()
    try:
        await eventually(lambda: len(seen) == 1, what="the event to be consumed")
    finally:
        await relay.stop()
        await worker.stop()
    assert seen == [None]  # the message carries no made-up trace context
    spans = list(exporter.get_finished_spans())
    assert only(spans, SpanKind.PRODUCER) == []  # no publish span: no trace started by the relay
    [consume] = only(spans, SpanKind.CONSUMER)
    assert consume.parent is None  # the consumed message is where a trace may start
