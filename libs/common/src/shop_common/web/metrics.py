"""HTTP metrics as pure ASGI middleware, labelled by route template, and the /metrics endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.web.routes import route_template

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the last byte of its response, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being served.", ["method"])
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Counts requests and observes latency by (method, route template, status).

    The route label is the template ("/orders/{order_id}"), never the raw path, so the
    number of series stays bounded; unmatched paths share one label. `route_label` may
    replace the template (the gateway labels by its own route names).
    """

    def __init__(
        self, app: ASGIApp, *, route_label: Callable[[Scope], str] = route_template
    ) -> None:
        self.app = app
        self.route_label = route_label
        # labels() hashes and locks on every call; the label sets are few, so keep the children.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._in_flight = {m: HTTP_IN_FLIGHT.labels(m) for m in (*_KNOWN_METHODS, "OTHER")}

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

        in_flight = self._in_flight[method]
        in_flight.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_flight.dec()
            key = (method, self.route_label(scope), str(status))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    HTTP_REQUESTS.labels(*key),
                    HTTP_DURATION.labels(key[0], key[1]),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


def metrics_router(registry: CollectorRegistry = REGISTRY) -> APIRouter:
    """A router serving GET /metrics in the Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
