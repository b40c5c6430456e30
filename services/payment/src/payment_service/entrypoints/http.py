"""The HTTP edge: `create_app(settings, **overrides)` and the module-level routers it mounts.

- GET /payments/{payment_id} and GET /payments?order_id= (owner or admin; another user's payment
  is a 404: its existence is not disclosed);
- GET/PUT /payments/admin/provider: the simulated provider's fault switches (admin).

The app's lifespan runs `bootstrap(settings, **overrides)` and keeps its App in
`app.state.app`; each endpoint gets the one use case it needs through a small dependency (503
while the process starts or stops). The bearer check is a router dependency added by create_app
(its verifier comes from the settings); endpoints read the verified principal.
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from shop_common.auth import Principal
from shop_common.web import (
    ProblemError,
    bearer_principal,
    instrument_app,
    problem_responses,
    require_role,
    service_app,
    token_verifier,
)
from shop_common.web.chaos import install_chaos
from shop_common.web.outages import install_outage_problems
from shop_common.web.security import unauthorized

from payment_service.bootstrap import App, bootstrap
from payment_service.domain.payment import Payment
from payment_service.entrypoints.schemas import (
    PaymentList,
    PaymentPublic,
    ProviderState,
    ProviderSwitchesUpdate,
)
from payment_service.service_layer.payments import PaymentService
from payment_service.service_layer.provider_admin import NoFaultSwitchesError, ProviderAdmin
from payment_service.settings import Settings

DESCRIPTION = """\
Charges every order exactly once and refunds cancelled paid orders. Work arrives as
`stock.reserved` / `order.cancelled` events on the queue `payment.order-events`; results leave
as `payment.succeeded`, `payment.failed` and `payment.refunded` through the outbox.

The HTTP API reads payments (owner or admin) and lets an admin flip the simulated provider's
fault switches at run time. Errors are RFC 9457 problem details (`application/problem+json`).
"""


def _running(request: Request) -> App:
    app = getattr(request.app.state, "app", None)
    if not isinstance(app, App):
        raise ProblemError(503, detail="the service is starting", headers={"Retry-After": "1"})
    return app


# `async` dependencies: FastAPI calls them in the event loop (a plain `def` costs a threadpool hop).
async def payment_reads(request: Request) -> PaymentService:
    """The payment use cases of the running service."""
    return _running(request).payments


async def provider_admin(request: Request) -> ProviderAdmin:
    """The provider's admin use case of the running service."""
    return _running(request).provider_admin


async def caller(request: Request) -> Principal:
    """The principal the router's bearer check verified."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise unauthorized("missing bearer token", token_sent=False)
    return principal


Payments = Annotated[PaymentService, Depends(payment_reads)]
Admin = Annotated[ProviderAdmin, Depends(provider_admin)]
Caller = Annotated[Principal, Depends(caller)]
AdminCaller = Annotated[Principal, Depends(require_role("admin"))]


def _visible_to(principal: Principal, row: Payment) -> bool:
    return principal.is_admin or (row.user_id is not None and str(row.user_id) == principal.subject)


payments_router = APIRouter(prefix="/payments", tags=["payments"])
provider_admin_router = APIRouter(prefix="/payments/admin/provider", tags=["admin"])


@payments_router.get(
    "/{payment_id}",
    response_model=PaymentPublic,
    responses=problem_responses(401, 404, 503),
    summary="One payment (charge or refund)",
)
async def get_payment(payment_id: UUID, caller: Caller, payments: Payments) -> PaymentPublic:
    row = await payments.get(payment_id)
    if row is None or not _visible_to(caller, row):
        raise ProblemError(404, detail=f"no payment {payment_id}")
    return PaymentPublic.of(row)


@payments_router.get(
    "",
    response_model=PaymentList,
    responses=problem_responses(401, 503),
    summary="The payments of one order",
)
async def list_payments(
    order_id: Annotated[UUID, Query(description="The order whose payments to list.")],
    caller: Caller,
    payments: Payments,
) -> PaymentList:
    rows = await payments.for_order(order_id)
    return PaymentList(items=[PaymentPublic.of(r) for r in rows if _visible_to(caller, r)])


def _no_switches(exc: NoFaultSwitchesError) -> ProblemError:
    return ProblemError(409, detail=str(exc))


@provider_admin_router.get(
    "",
    response_model=ProviderState,
    responses=problem_responses(401, 403, 409, 503),
    summary="The provider's fault switches",
)
async def get_provider(_admin: AdminCaller, provider: Admin) -> ProviderState:
    try:
        return ProviderState.of(provider.status())
    except NoFaultSwitchesError as exc:
        raise _no_switches(exc) from exc


@provider_admin_router.put(
    "",
    response_model=ProviderState,
    responses=problem_responses(401, 403, 409, 503),
    summary="Change some fault switches (the others keep their value)",
)
async def put_provider(
    update: ProviderSwitchesUpdate, admin: AdminCaller, provider: Admin
) -> ProviderState:
    try:
        return ProviderState.of(provider.switch(update.changes(), admin=admin.subject))
    except NoFaultSwitchesError as exc:
        raise _no_switches(exc) from exc


def create_app(settings: Settings | None = None, **overrides: Any) -> FastAPI:
    """The app; its lifespan runs bootstrap(settings, **overrides) (adapters for tests)."""
    settings = settings or Settings()
    app = service_app(
        title="Payment service",
        description=DESCRIPTION,
        settings=settings,
        start=lambda: bootstrap(settings, **overrides),
    )

    async def database() -> bool:
        running = app.state.app
        return isinstance(running, App) and await running.database_ready()

    async def broker() -> bool:
        running = app.state.app
        return isinstance(running, App) and await running.broker_ready()

    instrument_app(
        app, checks={"database": database, "broker": broker}, max_body_bytes=settings.max_body_bytes
    )
    install_outage_problems(app, service="payment")
    install_chaos(app, settings)  # chaos switches: admin only, off in production
    authenticated = [Depends(bearer_principal(token_verifier(settings)))]
    for router in (payments_router, provider_admin_router):
        app.include_router(router, dependencies=authenticated)
        # The gateway may forward /api/payments/** with or without its prefix (as for orders).
        app.include_router(
            router, prefix="/api", include_in_schema=False, dependencies=authenticated
        )
    return app
