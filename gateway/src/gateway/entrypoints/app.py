"""The ASGI app factory: `create_app(settings, **overrides)` is the FastAPI app of `python -m gateway`.

Its lifespan enters gateway.bootstrap (the composition root) and holds the App for the request
pipeline and the endpoints; the routers are module-level (token_api) or built from settings
(the transcoded user API: its breaker and deadline are settings).

Middleware, outside in: shop_common.web's request context and access log (instrument_app), the
request bounds (414/431/408), the gateway pipeline (gateway.entrypoints.pipeline), the router.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from shop_common.discovery import Registry
from shop_common.resilience import BreakerConfig
from shop_common.web import instrument_app

from gateway.bootstrap import bootstrap
from gateway.entrypoints.bounds import RequestBoundsMiddleware
from gateway.entrypoints.context import AppHolder
from gateway.entrypoints.pipeline import GatewayPipeline
from gateway.entrypoints.readiness import readiness_checks
from gateway.entrypoints.token_api import router as token_router
from gateway.entrypoints.transcoding import build_users_router, user_service_breaker
from gateway.settings import Settings


def create_app(
    settings: Settings | None = None, *, registry: Registry | None = None, **overrides: Any
) -> FastAPI:
    """The gateway app; `registry` (tests, Consul) and `overrides` go to bootstrap."""
    settings = settings or Settings()
    holder = AppHolder()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings, discovery=registry, **overrides) as running:
            holder.app = running
            app.state.cache_events = running.cache_events
            try:
                yield
            finally:
                holder.app = None

    app = FastAPI(
        title="shop gateway",
        version="1.0.0",
        description="The one front door: auth, rate limits, caching, breakers, proxy, REST→gRPC.",
        lifespan=lifespan,
        # The gateway's one rule for trailing slashes is in gateway.domain.paths (they are
        # dropped before routing): no redirect, whose Location would be built from the Host.
        redirect_slashes=False,
    )
    app.state.gateway = holder
    app.add_middleware(GatewayPipeline, holder=holder)
    # Inside the request context (request id, access log), outside the pipeline and the router.
    app.add_middleware(
        RequestBoundsMiddleware,
        max_target_bytes=settings.max_target_bytes,
        max_header_fields=settings.max_header_fields,
        max_header_bytes=settings.max_header_bytes,
        body_idle_seconds=settings.body_idle_seconds,
        body_total_seconds=settings.body_total_seconds,
    )
    instrument_app(app, checks=readiness_checks(holder), max_body_bytes=settings.max_body_bytes)
    app.include_router(token_router)
    user_breaker = user_service_breaker(
        config=BreakerConfig(
            consecutive_failures=settings.service_breaker_failures,
            failure_rate_threshold=None,
            recovery_timeout=settings.breaker_recovery_seconds,
        )
    )
    app.include_router(
        build_users_router(
            lambda: holder.get().users,
            breaker=user_breaker,
            timeout_seconds=settings.user_call_timeout_seconds,
        )
    )
    return app
