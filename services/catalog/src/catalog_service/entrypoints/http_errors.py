"""Domain and page-token errors → problem+json (the only place that knows their statuses)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from shop_common.web import problem_response
from shop_common.web.outages import PROBLEM_BASE, install_outage_problems
from starlette.responses import Response

from catalog_service.domain.errors import (
    InvalidPriceError,
    InvalidQuantityError,
    StockLimitError,
    UnknownSkuError,
)
from catalog_service.domain.listing import InvalidPageTokenError


async def _unknown_sku(request: Request, exc: Exception) -> Response:
    return problem_response(
        request, 404, detail="no such product", type=PROBLEM_BASE + "product-not-found"
    )


async def _unprocessable(request: Request, exc: Exception) -> Response:
    return problem_response(request, 422, detail=str(exc), type=PROBLEM_BASE + "invalid-change")


async def _stock_limit(request: Request, exc: Exception) -> Response:
    return problem_response(request, 409, detail=str(exc), type=PROBLEM_BASE + "stock-limit")


async def _invalid_page_token(request: Request, exc: Exception) -> Response:
    return problem_response(request, 400, detail=str(exc), type=PROBLEM_BASE + "invalid-page-token")


def install_catalog_errors(app: FastAPI) -> None:
    """Register the handlers (after shop_common.web's, which answer everything else)."""
    app.add_exception_handler(UnknownSkuError, _unknown_sku)
    app.add_exception_handler(InvalidPriceError, _unprocessable)
    app.add_exception_handler(InvalidQuantityError, _unprocessable)
    app.add_exception_handler(StockLimitError, _stock_limit)
    app.add_exception_handler(InvalidPageTokenError, _invalid_page_token)
    install_outage_problems(app, service="catalog")
