"""The OpenTelemetry SDK of a service: provider, sampler, OTLP/HTTP exporter, instrumentations.

`configure_tracing(service_name, settings)` is called once by each service's bootstrap; it
returns a `Tracing` whose `aclose()` (pushed on the bootstrap's AsyncExitStack) flushes the
spans still queued and shuts the provider down. `instrument_fastapi(app, settings)` is called by
shop_common.web.serve before uvicorn starts (the ASGI middleware must be in the app's stack
before the first request, and bootstrap runs inside the app's lifespan).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from shop_common.logging import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shop_common.settings import ServiceSettings

log = get_logger(__name__)

# Probes and scrapes start no trace: they would outnumber the requests. The FastAPI
# instrumentation searches these regexes (comma-separated) in "<scheme>://<host><path>": the
# path must be exactly one of them, so "/api/x/health" is traced.
UNTRACED_PATHS = ("/health", "/ready", "/metrics")
UNTRACED_URLS = ",".join(rf"^[a-z]+://[^/]*{path}$" for path in UNTRACED_PATHS)


def tracing_enabled(settings: ServiceSettings) -> bool:
    """Tracing is on when an OTLP endpoint is set and OTEL_SDK_DISABLED is not true."""
    return bool(settings.otel_exporter_otlp_endpoint) and not settings.otel_sdk_disabled


def sampler_of(settings: ServiceSettings) -> Sampler:
    """OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (the ratio) as an SDK sampler."""
    ratio = settings.otel_traces_sampler_arg
    return {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBasedTraceIdRatio(ratio),
    }[settings.otel_traces_sampler]


def traces_endpoint(base: str) -> str:
    """OTLP/HTTP's traces path under a base URL (as OTEL_EXPORTER_OTLP_ENDPOINT is defined)."""
    return base.rstrip("/") + "/v1/traces"


@dataclass
class Tracing:
    """What configure_tracing set up; `provider` is None when tracing is off."""

    provider: TracerProvider | None

    @property
    def enabled(self) -> bool:
        """Spans are recorded and exported."""
        return self.provider is not None

    async def aclose(self) -> None:
        """Export what is queued and stop the exporter (its HTTP calls block: in a thread)."""
        if self.provider is not None:
            provider, self.provider = self.provider, None
            await asyncio.to_thread(provider.shutdown)


def configure_tracing(
    service_name: str, settings: ServiceSettings, *, exporter: SpanExporter | None = None
) -> Tracing:
    """Install the SDK provider and the instrumentations when tracing is on (see the package
    docstring); with tracing off, install nothing and return a Tracing without a provider.

    `exporter` replaces the OTLP exporter (tests); it turns tracing on by itself. The SDK's
    global provider can be set once per process: a second call keeps the first provider.
    """
    if exporter is None and not tracing_enabled(settings):
        return Tracing(None)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert settings.otel_exporter_otlp_endpoint is not None
        exporter = OTLPSpanExporter(endpoint=traces_endpoint(settings.otel_exporter_otlp_endpoint))
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
            "deployment.environment": settings.environment,
        }
    )
    provider = TracerProvider(resource=resource, sampler=sampler_of(settings))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument_libraries()
    log.info(
        "tracing_configured",
        sampler=settings.otel_traces_sampler,
        ratio=settings.otel_traces_sampler_arg,
    )
    return Tracing(provider)


def instrument_libraries() -> None:
    """The library instrumentations (each patches once per process): the gRPC client
    (grpc.health.v1 calls left out: probes), aio-pika, asyncpg, Redis, httpx and aiohttp's
    client. Background work runs `untraced` (shop_common.observability.propagation).

    The gRPC server's spans are made by the server's own interceptor
    (shop_common.observability.rpc, used by the user service's CallPipeline), not by
    GrpcAioInstrumentorServer: its extra interceptor cost GetUser ~5x what the span costs."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (
        GrpcAioInstrumentorClient(filter_=grpc_call_filter()),  # type: ignore[no-untyped-call]
        AioPikaInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
        RedisInstrumentor(),
        HTTPXClientInstrumentor(),
        AioHttpClientInstrumentor(),
    ):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def grpc_call_filter() -> Callable[[object], bool]:
    """True for the gRPC client calls that are traced: every one but grpc.health.v1 (probes;
    the server side leaves them out in its interceptor)."""
    from opentelemetry.instrumentation.grpc import filters

    return filters.negate(filters.health_check())


def instrument_fastapi(
    app: FastAPI, settings: ServiceSettings, *, tracer_provider: TracerProvider | None = None
) -> None:
    """Server spans for the app's requests (route templates as names), when tracing is on.

    /health, /ready and /metrics get none (UNTRACED_URLS; shop_common.web.health runs the
    readiness checks untraced), and the ASGI middleware's internal "http send" / "http
    receive" spans (two or more per request, no information an SRE reads) are left out.
    `tracer_provider` replaces the global one (tests)."""
    if not tracing_enabled(settings):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],
        tracer_provider=tracer_provider,
    )
