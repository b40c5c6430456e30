"""Domain, lookup and outage errors → problem+json (the only place that knows their statuses)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from shop_common.web import problem_response
from shop_common.web.outages import PROBLEM_BASE, install_outage_problems
from starlette.responses import Response

from order_service.domain.listing import InvalidPageTokenError
from order_service.domain.order import (
    ConcurrentUpdateError,
    IllegalTransitionError,
    InvalidOrderError,
)
from order_service.service_layer.orders import IdempotencyConflictError, OrderNotFoundError
from order_service.service_layer.prices import CatalogUnavailableError, UnknownSkuError
from order_service.service_layer.users import (
    UnknownUserError,
    UserAccessDeniedError,
    UserServiceUnavailableError,
)


async def _illegal_transition(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IllegalTransitionError)
    return problem_response(
        request,
        409,
        detail=str(exc),
        type=PROBLEM_BASE + "illegal-transition",
        extensions={"current_status": exc.current.value, "target_status": exc.target.value},
    )


async def _concurrent_update(request: Request, exc: Exception) -> Response:
    return problem_response(
        request,
        409,
        detail="the order changed while this request ran; read it again and retry",
        type=PROBLEM_BASE + "concurrent-update",
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    # Another user's order is indistinguishable from a missing one (no existence leak).
    return problem_response(
        request, 404, detail="no such order", type=PROBLEM_BASE + "order-not-found"
    )


async def _idempotency_conflict(request: Request, exc: Exception) -> Response:
    return problem_response(
        request,
        422,
        detail="this Idempotency-Key was used with a different request body",
        type=PROBLEM_BASE + "idempotency-key-reused",
    )


async def _invalid_order(request: Request, exc: Exception) -> Response:
    return problem_response(request, 422, detail=str(exc), type=PROBLEM_BASE + "invalid-order")


async def _invalid_page_token(request: Request, exc: Exception) -> Response:
    return problem_response(request, 400, detail=str(exc), type=PROBLEM_BASE + "invalid-page-token")


async def _unknown_user(request: Request, exc: Exception) -> Response:
    return problem_response(
        request,
        422,
        detail="the calling user does not exist (deleted after the token was issued)",
        type=PROBLEM_BASE + "unknown-user",
    )


async def _user_access_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserAccessDeniedError)
    return problem_response(request, exc.status, detail=exc.reason)


async def _user_service_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserServiceUnavailableError)
    return problem_response(
        request,
        503,
        detail=exc.reason,
        type=PROBLEM_BASE + "user-service-unavailable",
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _unknown_sku(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownSkuError)
    return problem_response(
        request,
        422,
        detail=f"the shop sells no product {exc.sku!r}",
        type=PROBLEM_BASE + "unknown-sku",
        extensions={"sku": exc.sku},
    )


async def _catalog_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CatalogUnavailableError)
    return problem_response(
        request,
        503,
        detail=f"prices cannot be looked up now: {exc.reason}",
        type=PROBLEM_BASE + "catalog-unavailable",
        headers={"Retry-After": str(exc.retry_after)},
    )


def install_order_errors(app: FastAPI) -> None:
    """Register the handlers (after shop_common.web's, which answer everything else)."""
    app.add_exception_handler(IllegalTransitionError, _illegal_transition)
    app.add_exception_handler(ConcurrentUpdateError, _concurrent_update)
    app.add_exception_handler(OrderNotFoundError, _not_found)
    app.add_exception_handler(IdempotencyConflictError, _idempotency_conflict)
    app.add_exception_handler(InvalidOrderError, _invalid_order)
    app.add_exception_handler(InvalidPageTokenError, _invalid_page_token)
    app.add_exception_handler(UnknownUserError, _unknown_user)
    app.add_exception_handler(UserAccessDeniedError, _user_access_denied)
    app.add_exception_handler(UserServiceUnavailableError, _user_service_unavailable)
    app.add_exception_handler(UnknownSkuError, _unknown_sku)
    app.add_exception_handler(CatalogUnavailableError, _catalog_unavailable)
    install_outage_problems(app, service="order")
