"""The RED metric family every service exports (HTTP and gRPC), and a /metrics server for
services that speak no HTTP.

    shop_requests_total{protocol, operation, code, outcome}     Counter
    shop_request_duration_seconds{protocol, operation}          Histogram
    shop_requests_in_flight{protocol}                           Gauge

protocol is "http" or "grpc"; operation is "<METHOD> <route template>" for HTTP and the full
method ("/shop.user.v1.UserService/GetUser") for gRPC; code is the HTTP status ("200") or the
gRPC status name ("NOT_FOUND"); outcome is `outcome(protocol, code)`. The service is
Prometheus's `job` label, not a label of ours. docs/metrics.md lists every family.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

from shop_common.logging import get_logger

log = get_logger(__name__)

Protocol = Literal["http", "grpc"]
Outcome = Literal["ok", "client_error", "server_error"]

REQUESTS = Counter(
    "shop_requests_total",
    "Requests served, by protocol, operation, status code and outcome.",
    ["protocol", "operation", "code", "outcome"],
)
DURATION = Histogram(
    "shop_request_duration_seconds",
    "Time from a request's arrival to the end of its answer (a stream: its whole life).",
    ["protocol", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge("shop_requests_in_flight", "Requests being served now.", ["protocol"])

# gRPC codes that say the caller asked for something wrong (or went away): not our failure.
GRPC_CLIENT_ERRORS = frozenset(
    {
        "CANCELLED",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "RESOURCE_EXHAUSTED",
    }
)


def outcome(protocol: Protocol, code: str) -> Outcome:
    """ok, client_error or server_error, for an HTTP status ("404") or a gRPC code name.

    HTTP: below 400 ok, 4xx client_error, 5xx (and anything unreadable) server_error.
    gRPC: OK ok, the codes of GRPC_CLIENT_ERRORS client_error, the rest server_error.
    """
    if protocol == "grpc":
        if code == "OK":
            return "ok"
        return "client_error" if code in GRPC_CLIENT_ERRORS else "server_error"
    try:
        status = int(code)
    except ValueError:
        return "server_error"
    if status < 400:
        return "ok"
    return "client_error" if status < 500 else "server_error"


class RedRecorder:
    """Records finished requests of one protocol into the RED family.

    `labels()` hashes and locks on every call; the label sets are few (operations × codes),
    so each child is looked up once and kept.
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol: Protocol = protocol
        self.in_flight = IN_FLIGHT.labels(protocol)
        self._series: dict[tuple[str, str], tuple[Any, Any]] = {}

    def record(self, operation: str, code: str, seconds: float) -> None:
        """Count one request that ended with `code` after `seconds`."""
        key = (operation, code)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                REQUESTS.labels(self.protocol, operation, code, outcome(self.protocol, code)),
                DURATION.labels(self.protocol, operation),
            )
        series[0].inc()
        series[1].observe(seconds)


@asynccontextmanager
async def metrics_server(
    host: str, port: int, registry: CollectorRegistry = REGISTRY
) -> AsyncIterator[int | None]:
    """Serve GET /metrics over HTTP on host:port while the block runs; yields the bound port.

    prometheus_client's own server, in a thread of its own, so a scrape never waits on the
    event loop. Port 0 means off (yields None): a service without HTTP sets METRICS_PORT.
    """
    if port == 0:
        yield None
        return
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])
    log.info("metrics_serving", host=host, port=bound)
    try:
        yield bound
    finally:
        await asyncio.to_thread(_shut, server, thread)


def _shut(server: Any, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
