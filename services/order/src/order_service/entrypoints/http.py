"""The HTTP entrypoint: the /orders routes (module-level router), their narrow dependencies, and
`create_app(settings)`, the FastAPI app whose lifespan runs bootstrap().

Each endpoint gets exactly the use case or object it needs from the started App through a small
Depends function (http_deps.py; 503 while the app is starting or stopping), and the verified
Caller.
No `from __future__ import annotations`: FastAPI must resolve the local Annotated aliases.
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response, status
from pydantic import AwareDatetime
from shop_common.web import (
    ProblemError,
    bearer_principal,
    instrument_app,
    problem_responses,
    service_app,
    token_verifier,
)
from shop_common.web.chaos import install_chaos
from shop_common.web.paths import forwarded_prefix

from order_service.bootstrap import App, bootstrap
from order_service.domain.listing import OrderFilter, OrderPageTokens, PageSizes
from order_service.domain.order import OrderStatus
from order_service.entrypoints.http_deps import (
    CallerDep,
    OrdersDep,
    in_utc,
    page_sizes,
    page_tokens,
    place_order,
    request_id,
)
from order_service.entrypoints.http_errors import install_order_errors
from order_service.entrypoints.http_schemas import OrderCreate, OrderPage, OrderPublic
from order_service.service_layer.orders import PlaceOrder
from order_service.settings import Settings

DESCRIPTION = """Orders and their payment saga.

Every endpoint needs `Authorization: Bearer <RS256 JWT>` issued by the gateway. Errors are
RFC 9457 `application/problem+json`. The gateway forwards `/api/orders/**` here with the
`/api` prefix stripped (routes.yaml `strip_prefix`); `Location` headers honour an
`X-Forwarded-Prefix` the proxy sends.
"""
# Order states change asynchronously (payment events): a shared cache must revalidate.
NO_CACHE = {"Cache-Control": "private, no-cache"}
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
# ----- routes ---------------------------------------------------------------------------------
router = APIRouter(prefix="/orders", tags=["orders"])

_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(400, 401, 403, 413, 503),
    201: {
        "description": "Created (or, for a repeated Idempotency-Key with the same body, the "
        "order created the first time, with `Idempotent-Replayed: true`).",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "The order's URL"}},
    },
    422: {
        "description": "Invalid body (a `unit_price` too: the shop prices every line), an "
        "unknown sku (named in `sku`), the Idempotency-Key reused with another body, or the "
        "calling user no longer exists (problem+json)."
    },
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderPublic,
    responses=_CREATE_RESPONSES,
    summary="Place an order",
    description="Lines are a sku and a quantity; the shop prices each at the catalog's current "
    "price when the order is placed (a price that changed after the client saw it is charged "
    "at the shop's price at order time) and the order keeps the unit price it was priced at. "
    "The caller (from the verified JWT) is checked with the user service, the prices with the "
    "catalog, each behind a breaker and a cache; when one cannot answer the answer is 503 with "
    "Retry-After, never 500.",
)
async def create_order(
    request: Request,
    response: Response,
    body: OrderCreate,
    who: CallerDep,
    place: Annotated[PlaceOrder, Depends(place_order)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="A retry with the same key and body returns the same order.",
            examples=["3f1c9a8e-order-1"],
        ),
    ] = None,
) -> OrderPublic:
    order, created = await place(
        who.user_id,
        body.wanted(),
        body.currency,
        idempotency_key,
        token=who.token,
        request_id=request_id(request),
    )
    response.headers["Location"] = f"{forwarded_prefix(request)}/orders/{order.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return OrderPublic.of(order)


@router.get(
    "",
    response_model=OrderPage,
    responses=problem_responses(400, 401, 403),
    summary="List orders, newest first",
    description="A user sees its own orders; an admin sees everyone's (or one user's with "
    "user_id). created_from is inclusive, created_to exclusive (RFC 3339 with offset).",
)
async def list_orders(
    response: Response,
    who: CallerDep,
    orders: OrdersDep,
    tokens: Annotated[OrderPageTokens, Depends(page_tokens)],
    sizes: Annotated[PageSizes, Depends(page_sizes)],
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    created_from: AwareDatetime | None = None,
    created_to: AwareDatetime | None = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="admins only")] = None,
    page_size: Annotated[int | None, Query(ge=1, le=1000)] = None,
    page_token: Annotated[
        str | None,
        Query(
            description="next_page_token of the previous page. Any token this service did "
            "not issue for the same filters (forged, truncated, malformed, too long) is 400."
        ),
    ] = None,
) -> OrderPage:
    if user_id is not None and not who.is_admin and user_id != who.user_id:
        raise ProblemError(403, detail="only an admin may list another user's orders")
    created_from, created_to = in_utc(created_from), in_utc(created_to)
    if created_from and created_to and created_from >= created_to:
        raise ProblemError(400, detail="created_from must be before created_to")
    order_filter = OrderFilter(
        user_id=user_id if who.is_admin else who.user_id,
        status=status_filter,
        created_from=created_from,
        created_to=created_to,
    )
    after = tokens.decode(page_token, order_filter) if page_token else None
    page, cursor = await orders.list_page(order_filter, after, sizes.size(page_size))
    response.headers.update(NO_CACHE)
    return OrderPage(
        items=[OrderPublic.of(o) for o in page],
        next_page_token=tokens.encode(cursor, order_filter) if cursor else None,
    )


@router.get(
    "/{order_id}",
    response_model=OrderPublic,
    responses=problem_responses(401, 403, 404),
    summary="Read one order",
    description="Its owner or an admin. Another user's order answers 404, exactly like a "
    "missing one, so ids of other users' orders cannot be probed.",
)
async def get_order(
    order_id: UUID, response: Response, who: CallerDep, orders: OrdersDep
) -> OrderPublic:
    order = await orders.get(order_id, user_id=who.user_id, is_admin=who.is_admin)
    response.headers.update(NO_CACHE)
    return OrderPublic.of(order)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderPublic,
    responses=problem_responses(401, 403, 404, 409),
    summary="Cancel an order",
    description="PENDING → CANCELLED; PAID → CANCELLED_REFUND_PENDING (the payment service "
    "refunds, then the order becomes REFUNDED). Any other state → 409.",
)
async def cancel_order(order_id: UUID, who: CallerDep, orders: OrdersDep) -> OrderPublic:
    order = await orders.cancel(order_id, user_id=who.user_id, is_admin=who.is_admin)
    return OrderPublic.of(order)


# ----- the app --------------------------------------------------------------------------------
def create_app(settings: Settings | None = None, **overrides: Any) -> FastAPI:
    """The app; its lifespan runs bootstrap(settings, **overrides) (see bootstrap.py)."""
    settings = settings or Settings()
    app = service_app(
        title="Order service",
        description=DESCRIPTION,
        settings=settings,
        start=lambda: bootstrap(settings, **overrides),
    )
    app.state.authenticate = bearer_principal(token_verifier(settings))

    def started() -> App:
        running: App | None = app.state.app
        if running is None:
            raise RuntimeError("not started")
        return running

    async def database() -> bool:
        return await started().database_ready()

    async def broker() -> bool:
        return await started().broker_ready()

    instrument_app(
        app, checks={"database": database, "broker": broker}, max_body_bytes=settings.max_body_bytes
    )
    install_order_errors(app)
    install_chaos(app, settings)  # chaos switches: admin only, off in production
    app.include_router(router)
    return app
