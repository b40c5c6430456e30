"""FastAPI toolkit shared by the order service, the payment service and the gateway.

Middleware here is pure ASGI (no BaseHTTPMiddleware: it costs a task per request and
buffers streaming). Outer to inner: RequestContextMiddleware → HttpMetricsMiddleware →
BodySizeLimitMiddleware → the app; `instrument_app` installs them in that order.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from shop_common.web.app import service_app, token_verifier
from shop_common.web.context import (
    REQUEST_ID_HEADER,
    RequestContextMiddleware,
    new_request_id,
    request_id_from,
)
from shop_common.web.health import (
    HealthStatus,
    ReadinessCheck,
    ReadinessStatus,
    health_router,
    run_checks,
)
from shop_common.web.limits import BodySizeLimitMiddleware, BodyTooLargeError
from shop_common.web.metrics import HttpMetricsMiddleware, metrics_router
from shop_common.web.problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemError,
    ProblemResponse,
    install_problem_details,
    problem_body,
    problem_response,
    problem_responses,
)
from shop_common.web.routes import route_template
from shop_common.web.security import bearer_principal, require_role, unauthorized

__all__ = (
    "PROBLEM_MEDIA_TYPE",
    "REQUEST_ID_HEADER",
    "BodySizeLimitMiddleware",
    "BodyTooLargeError",
    "HealthStatus",
    "HttpMetricsMiddleware",
    "ProblemError",
    "ProblemResponse",
    "ReadinessCheck",
    "ReadinessStatus",
    "RequestContextMiddleware",
    "bearer_principal",
    "health_router",
    "install_problem_details",
    "instrument_app",
    "metrics_router",
    "new_request_id",
    "problem_body",
    "problem_response",
    "problem_responses",
    "request_id_from",
    "require_role",
    "route_template",
    "run_checks",
    "service_app",
    "token_verifier",
    "unauthorized",
)


def instrument_app(
    app: FastAPI,
    *,
    checks: Mapping[str, ReadinessCheck] | None = None,
    max_body_bytes: int | None = 1_048_576,
) -> FastAPI:
    """Problem details, request context, metrics, body limit, /health, /ready and /metrics."""
    install_problem_details(app)
    if max_body_bytes is not None:
        app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)  # added last = outermost
    app.include_router(health_router(checks))
    app.include_router(metrics_router())
    return app
