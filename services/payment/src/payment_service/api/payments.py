"""GET /payments/{payment_id} and GET /payments?order_id= (owner or admin)."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from shop_common.auth import Principal
from shop_common.web import ProblemError, problem_responses
from shop_common.web.security import PrincipalDependency

from payment_service.api.deps import Runtime
from payment_service.api.schemas import PaymentList, PaymentPublic
from payment_service.service_layer.payments import PaymentRow


def _visible_to(principal: Principal, row: PaymentRow) -> bool:
    return principal.is_admin or (row.user_id is not None and str(row.user_id) == principal.subject)


def payments_router(auth: PrincipalDependency) -> APIRouter:
    """The read API; another user's payment is a 404 (its existence is not disclosed)."""
    router = APIRouter(prefix="/payments", tags=["payments"])
    Caller = Annotated[Principal, Depends(auth)]

    @router.get(
        "/{payment_id}",
        response_model=PaymentPublic,
        responses=problem_responses(401, 404, 503),
        summary="One payment (charge or refund)",
    )
    async def get_payment(payment_id: UUID, caller: Caller, runtime: Runtime) -> PaymentPublic:
        row = await runtime.service.get(payment_id)
        if row is None or not _visible_to(caller, row):
            raise ProblemError(404, detail=f"no payment {payment_id}")
        return PaymentPublic.of(row)

    @router.get(
        "",
        response_model=PaymentList,
        responses=problem_responses(401, 503),
        summary="The payments of one order",
    )
    async def list_payments(
        order_id: Annotated[UUID, Query(description="The order whose payments to list.")],
        caller: Caller,
        runtime: Runtime,
    ) -> PaymentList:
        rows = await runtime.service.for_order(order_id)
        return PaymentList(items=[PaymentPublic.of(r) for r in rows if _visible_to(caller, r)])

    return router
