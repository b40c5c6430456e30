"""Cost of shop_common.web's middleware per request, driven in-process (A B C A B C in one run).

A: bare FastAPI. B: the toolkit (problem details, request context with its JSON access line
rendered to /dev/null, metrics by route template, body limit). C: the same request id, access
line and metrics written as one BaseHTTPMiddleware, the pattern the toolkit avoids.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import Counter
from shop_common.web import (
    BodySizeLimitMiddleware,
    HttpMetricsMiddleware,
    RequestContextMiddleware,
    install_problem_details,
)
from starlette.middleware.base import BaseHTTPMiddleware

BENCH_REQUESTS = Counter("bench_base_http_requests_total", "C's counter.", ["route", "status"])


def add_route(app: FastAPI) -> FastAPI:
    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


def toolkit_app() -> FastAPI:
    app = add_route(FastAPI())
    install_problem_details(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=1_048_576)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app


class BaseHttpContext(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "<unmatched>")
            BENCH_REQUESTS.labels(route, str(response.status_code)).inc()
            structlog.get_logger("bench").info(
                "http_request",
                path=request.url.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        response.headers["X-Request-ID"] = request_id
        return response


def base_http_app() -> FastAPI:
    app = add_route(FastAPI())
    app.add_middleware(BaseHttpContext)
    return app


async def drive(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"unexpected status {message['status']}")

    start = time.perf_counter()
    for i in range(n):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/items/{i}",
            "raw_path": f"/items/{i}".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)
    return time.perf_counter() - start


def configure_json_logs_to(devnull: Any) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(devnull),
        cache_logger_on_first_use=True,
    )


async def main(quick: bool) -> None:
    n, rounds = (1_000, 3) if quick else (5_000, 5)
    apps = {"bare": add_route(FastAPI()), "toolkit": toolkit_app(), "base_http": base_http_app()}
    for app in apps.values():
        await drive(app, 50)  # build middleware stacks, warm caches
    totals = dict.fromkeys(apps, 0.0)
    for r in range(rounds):
        line = []
        for name, app in apps.items():
            seconds = await drive(app, n)
            totals[name] += seconds
            line.append(f"{name} {seconds / n * 1e6:.1f} µs/req ({n / seconds:,.0f} req/s)")
        print(f"round {r + 1}: " + ", ".join(line))
    per_req = {name: total / (n * rounds) * 1e6 for name, total in totals.items()}
    print(
        json.dumps(
            {
                "bench": "web_middleware",
                "bare_us": round(per_req["bare"], 1),
                "toolkit_us": round(per_req["toolkit"], 1),
                "base_http_us": round(per_req["base_http"], 1),
                "toolkit_overhead_us": round(per_req["toolkit"] - per_req["bare"], 1),
                "base_http_overhead_us": round(per_req["base_http"] - per_req["bare"], 1),
                "rps": round(1e6 / per_req["toolkit"]),
                "ratio_to_ceiling": round(per_req["bare"] / per_req["toolkit"], 2),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-second run")
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        configure_json_logs_to(sink)
        asyncio.run(main(args.quick))
