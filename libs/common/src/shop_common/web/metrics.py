"""HTTP's side of the RED family (shop_common.metrics) as pure ASGI middleware, and /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.metrics import RedRecorder
from shop_common.web.routes import route_template

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Records every request as protocol="http", operation="<METHOD> <route template>".

    The operation names the template ("GET /orders/{order_id}"), never the raw path, so the
    number of series stays bounded; unmatched paths share one label ("GET <unmatched>").
    `route_label` may replace the template (the gateway labels by its own route patterns).
    """

    def __init__(
        self, app: ASGIApp, *, route_label: Callable[[Scope], str] = route_template
    ) -> None:
        self.app = app
        self.route_label = route_label
        self._red = RedRecorder("http")
        # "<METHOD> <label>" strings, built once per pair rather than once per request.
        self._operations: dict[tuple[str, str], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self._red.in_flight
        in_flight.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_flight.dec()
            key = (method, self.route_label(scope))
            operation = self._operations.get(key)
            if operation is None:
                operation = self._operations[key] = f"{key[0]} {key[1]}"
            self._red.record(operation, str(status), time.perf_counter() - started)


def metrics_router(registry: CollectorRegistry = REGISTRY) -> APIRouter:
    """A router serving GET /metrics in the Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
