"""The FastAPI app of the order service: `create_app(settings)` is the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from shop_common.auth import CachingTokenVerifier
from shop_common.discovery import (
    HealthCheck,
    ServiceRegistration,
    local_instance,
    registry_from_settings,
)
from shop_common.logging import get_logger
from shop_common.web import bearer_principal, instrument_app

from order_service.api.deps import caller_dependency, get_runtime
from order_service.api.errors import install_order_errors
from order_service.api.orders import orders_router
from order_service.bootstrap import OrderRuntime, start_runtime
from order_service.settings import Settings

log = get_logger(__name__)

DESCRIPTION = """Orders and their payment saga.

Every endpoint needs `Authorization: Bearer <RS256 JWT>` issued by the gateway. Errors are
RFC 9457 `application/problem+json`. The gateway forwards `/api/orders/**` here with the
`/api` prefix stripped (routes.yaml `strip_prefix`); `Location` headers honour an
`X-Forwarded-Prefix` the proxy sends.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; its lifespan starts the runtime (database, broker, consumers, relay, sweeper)."""
    settings = settings or Settings()
    # Verified tokens are cached until their exp: a shopper's token verifies once, not per call.
    verifier = CachingTokenVerifier(
        settings.jwt_public_keys,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_leeway_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings)
        app.state.runtime = runtime
        registry = registry_from_settings(settings)
        instance = local_instance(settings.service_name, settings.host, settings.http_port)
        try:
            async with ServiceRegistration(registry, instance, HealthCheck.http("/ready")):
                yield
        finally:
            # uvicorn has stopped taking requests and finished those in flight by now.
            app.state.runtime = None
            await runtime.stop()
            await registry.close()

    app = FastAPI(
        title="Order service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Behind the gateway a 307 to the trailing-slash twin would carry this process's own
        # address in Location (issue 11): an unknown path is a 404 problem, never a redirect.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.runtime = None

    async def database() -> bool:
        return await _runtime_of(app).database_ready()

    async def broker() -> bool:
        return await _runtime_of(app).broker_ready()

    instrument_app(
        app, checks={"database": database, "broker": broker}, max_body_bytes=settings.max_body_bytes
    )
    install_order_errors(app)
    app.include_router(orders_router(caller_dependency(bearer_principal(verifier))))
    return app


def _runtime_of(app: FastAPI) -> OrderRuntime:
    runtime: OrderRuntime | None = app.state.runtime
    if runtime is None:
        raise RuntimeError("not started")
    return runtime


__all__ = ("create_app", "get_runtime")
