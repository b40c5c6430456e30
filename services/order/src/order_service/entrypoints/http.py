"""The /orders resource: create (idempotent), read, list (keyset pages), cancel.

No `from __future__ import annotations` here: FastAPI must see the local Annotated aliases.
"""

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import AwareDatetime
from shop_common.web import ProblemError, problem_responses
from shop_common.web.paths import forwarded_prefix

from order_service.api.deps import (
    Caller,
    CallerDependency,
    RuntimeDep,
    request_id,
)
from order_service.api.schemas import OrderCreate, OrderPage, OrderPublic
from order_service.domain.listing import OrderFilter
from order_service.domain.order import OrderStatus

# Order states change asynchronously (payment events): a shared cache must revalidate.
NO_CACHE = {"Cache-Control": "private, no-cache"}
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"

_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(400, 401, 403, 413, 503),
    201: {
        "description": "Created (or, for a repeated Idempotency-Key with the same body, the "
        "order created the first time, with `Idempotent-Replayed: true`).",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "The order's URL"}},
    },
    422: {
        "description": "Invalid body, the Idempotency-Key reused with another body, or the "
        "calling user no longer exists (problem+json)."
    },
}
_CANCEL_DOC = (
    "PENDING → CANCELLED; PAID → CANCELLED_REFUND_PENDING (the payment service refunds, then "
    "the order becomes REFUNDED). Any other state → 409."
)


def in_utc(moment: datetime | None) -> datetime | None:
    """The moment in UTC; 400 for the few representable offsets that leave the calendar."""
    try:
        return moment.astimezone(UTC) if moment is not None else None
    except (OverflowError, ValueError) as exc:
        raise ProblemError(400, detail=f"{moment} is out of range") from exc


def orders_router(caller: CallerDependency) -> APIRouter:
    """The router, authenticated by `caller` (built from the app's token verifier)."""
    router = APIRouter(prefix="/orders", tags=["orders"])
    CallerDep = Annotated[Caller, Depends(caller)]

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=OrderPublic,
        responses=_CREATE_RESPONSES,
        summary="Place an order",
        description="The total is computed by the server from exact decimal prices. The caller "
        "(from the verified JWT) is checked with the user service behind a breaker and a cache; "
        "when it cannot be checked the answer is 503 with Retry-After, never 500.",
    )
    async def create_order(
        request: Request,
        response: Response,
        body: OrderCreate,
        who: CallerDep,
        runtime: RuntimeDep,
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
        await runtime.lookup.require(who.user_id, token=who.token, request_id=request_id(request))
        order, created = await runtime.service.create(
            who.user_id, body.lines(), body.currency, idempotency_key
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
        runtime: RuntimeDep,
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
        settings = runtime.settings
        if user_id is not None and not who.is_admin and user_id != who.user_id:
            raise ProblemError(403, detail="only an admin may list another user's orders")
        created_from, created_to = in_utc(created_from), in_utc(created_to)
        if created_from and created_to and created_from >= created_to:
            raise ProblemError(400, detail="created_from must be before created_to")
        size = min(page_size or settings.page_size_default, settings.page_size_max)
        order_filter = OrderFilter(
            user_id=user_id if who.is_admin else who.user_id,
            status=status_filter,
            created_from=created_from,
            created_to=created_to,
        )
        after = runtime.page_tokens.decode(page_token, order_filter) if page_token else None
        orders, cursor = await runtime.service.list_page(order_filter, after, size)
        response.headers.update(NO_CACHE)
        return OrderPage(
            items=[OrderPublic.of(o) for o in orders],
            next_page_token=runtime.page_tokens.encode(cursor, order_filter) if cursor else None,
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
        order_id: UUID, response: Response, who: CallerDep, runtime: RuntimeDep
    ) -> OrderPublic:
        order = await runtime.service.get(order_id, user_id=who.user_id, is_admin=who.is_admin)
        response.headers.update(NO_CACHE)
        return OrderPublic.of(order)

    @router.post(
        "/{order_id}/cancel",
        response_model=OrderPublic,
        responses=problem_responses(401, 403, 404, 409),
        summary="Cancel an order",
        description=_CANCEL_DOC,
    )
    async def cancel_order(order_id: UUID, who: CallerDep, runtime: RuntimeDep) -> OrderPublic:
        order = await runtime.service.cancel(order_id, user_id=who.user_id, is_admin=who.is_admin)
        return OrderPublic.of(order)

    return router
