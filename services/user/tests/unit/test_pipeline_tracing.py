"""The server spans the call pipeline makes (shop_common.observability.rpc), through a real
grpc.aio server on loopback over the in-memory service fakes: a call continues the caller's
trace, its status is on the span, a health check gets none, and with tracing off nothing is
recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from shop_common.auth import TokenIssuer, TokenVerifier, generate_signing_key
from shop_common.observability import RpcServerSpans, rpc_server_spans
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from shop_testing.wait import eventually
from user_service.domain.model import User
from user_service.entrypoints.grpc.interceptors import CallPipeline, RateLimiter
from user_service.entrypoints.grpc.servicer import UserServicer

from .fakes import T0, FakeReads, Row, make_world

GET_USER = "/shop.user.v1.UserService/GetUser"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"
StartServer = Callable[..., Any]


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


class TracedReads(FakeReads):
    """Reads that start a span of their own (as the asyncpg instrumentation does), or fail as
    a database that is down does."""

    def __init__(self, *args: Any, tracer: trace.Tracer, down: bool = False) -> None:
        super().__init__(*args)
        self.tracer = tracer
        self.down = down

    async def get(self, user_id: int) -> User:
        with self.tracer.start_as_current_span("SELECT users"):
            if self.down:
                raise ConnectionRefusedError("database down")
            return await super().get(user_id)


@pytest_asyncio.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """start(spans, down=False, tracer) -> (user stub, health stub, bearer metadata)."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []
    key = generate_signing_key("test-kid")
    token = TokenIssuer(key, "iss", "aud").issue("1", ["admin"])

    async def run(
        spans: RpcServerSpans | None, tracer: trace.Tracer, down: bool = False
    ) -> tuple[Any, Any, tuple[tuple[str, str], ...]]:
        world = make_world()
        world.store.rows[1] = Row(User(1, "a@example.com", "A", ("admin",), T0, T0), "hashed:x")
        world.service.reads = TracedReads(world.store, tracer=tracer, down=down)
        verifier = TokenVerifier({key.kid: key.public_pem}, "iss", "aud")
        pipeline = CallPipeline(verifier, RateLimiter(1e6, 10**6), spans=spans)
        server = grpc.aio.server(interceptors=[pipeline])
        user_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(world.service, None), server)  # type: ignore[arg-type]
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return (
            user_pb2_grpc.UserServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
            (("authorization", f"Bearer {token}"),),
        )

    yield run
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


async def the_server_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    """The one server span, once it has ended: a failed call's status reaches the client
    before the server's interceptor ends the span."""
    await eventually(lambda: bool(server_spans(exporter)), timeout=10, what="the server span")
    [span] = server_spans(exporter)
    return span


async def test_a_call_continues_the_callers_trace_and_its_work_is_inside_the_span(
    start: StartServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    users, _, auth = await start(rpc_server_spans(provider), provider.get_tracer("test"))
    traceparent = ("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
    reply = await users.GetUser(user_pb2.GetUserRequest(id=1), metadata=(*auth, traceparent))
    assert reply.user.email == "a@example.com"
    [span] = server_spans(exporter)
    assert span.name == GET_USER
    assert span.context is not None and span.parent is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID and span.parent.is_remote
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "shop.user.v1.UserService",
        "rpc.method": "GetUser",
        "rpc.grpc.status_code": 0,
    }
    assert span.status.status_code is StatusCode.UNSET
    [read] = [s for s in exporter.get_finished_spans() if s.name == "SELECT users"]
    assert read.parent is not None and read.parent.span_id == span.context.span_id


async def test_a_call_without_a_trace_context_starts_one(
    start: StartServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    users, _, auth = await start(rpc_server_spans(provider), provider.get_tracer("test"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await users.GetUser(user_pb2.GetUserRequest(id=404), metadata=auth)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    span = await the_server_span(exporter)
    assert span.parent is None
    # A client's fault is not the server's error: the code is recorded, the status left unset.
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 5
    assert span.status.status_code is StatusCode.UNSET


async def test_a_server_error_is_the_spans_error_status(
    start: StartServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    users, _, auth = await start(rpc_server_spans(provider), provider.get_tracer("test"), True)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await users.GetUser(user_pb2.GetUserRequest(id=1), metadata=auth)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    span = await the_server_span(exporter)
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 14
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "StatusCode.UNAVAILABLE:database unavailable"


async def test_health_checks_get_no_span(
    start: StartServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    _, health_stub, _ = await start(rpc_server_spans(provider), provider.get_tracer("test"))
    reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert exporter.get_finished_spans() == ()


async def test_with_tracing_off_no_span_is_made(
    start: StartServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    assert rpc_server_spans(None) is None  # what bootstrap hands in when tracing is off
    users, _, auth = await start(None, provider.get_tracer("test"))
    traceparent = ("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
    await users.GetUser(user_pb2.GetUserRequest(id=1), metadata=(*auth, traceparent))
    assert server_spans(exporter) == []
    # The caller's context is not taken up either: the read's span is a root of its own.
    [read] = exporter.get_finished_spans()
    assert read.parent is None
