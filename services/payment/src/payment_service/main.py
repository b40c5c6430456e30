"""The payment service's composition root: `create_app(settings)` returns the FastAPI app.

The lifespan starts the message side (PaymentRuntime: consumer, outbox relay, breaker-guarded
provider, registration) and stops it after uvicorn has finished the HTTP requests in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from shop_common.web import bearer_principal, instrument_app
from shop_common.web.outages import install_outage_problems

from payment_service.api.deps import token_verifier
from payment_service.api.payments import payments_router
from payment_service.api.provider_admin import provider_admin_router
from payment_service.provider.simulated import PaymentProvider
from payment_service.runtime import PaymentRuntime
from payment_service.settings import Settings

DESCRIPTION = """\
Charges every order exactly once and refunds cancelled paid orders. Work arrives as
`order.created` / `order.cancelled` events on the queue `payment.order-events`; results leave
as `payment.succeeded`, `payment.failed` and `payment.refunded` through the outbox.

The HTTP API reads payments (owner or admin) and lets an admin flip the simulated provider's
fault switches at run time. Errors are RFC 9457 problem details (`application/problem+json`).
"""


def create_app(
    settings: Settings | None = None, *, provider: PaymentProvider | None = None
) -> FastAPI:
    """The app; `provider` replaces the simulated provider built from the settings."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await PaymentRuntime.start(settings, provider)
        app.state.runtime = runtime
        try:
            yield
        finally:
            app.state.runtime = None
            await runtime.stop()

    app = FastAPI(
        title="Payment service",
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
        runtime = app.state.runtime
        return isinstance(runtime, PaymentRuntime) and await runtime.database_ready()

    async def broker() -> bool:
        runtime = app.state.runtime
        return isinstance(runtime, PaymentRuntime) and await runtime.broker_ready()

    instrument_app(
        app, checks={"database": database, "broker": broker}, max_body_bytes=settings.max_body_bytes
    )
    install_outage_problems(app, service="payment")
    auth = bearer_principal(token_verifier(settings))
    for router in (payments_router(auth), provider_admin_router(auth)):
        app.include_router(router)
        # The gateway may forward /api/payments/** with or without its prefix (as for orders).
        app.include_router(router, prefix="/api", include_in_schema=False)
    return app
