"""Running a service's ASGI app under uvicorn: the one `python -m <service>` entry point.

Logging is configured before the app is built (so the app's own start-up logs are JSON lines),
and the app gets the FastAPI instrumentation when tracing is on (shop_common.observability);
uvicorn's own loggers and access log are off (structlog owns the root logger, and
RequestContextMiddleware writes one access line per request). On SIGTERM/SIGINT uvicorn stops
accepting, gives in-flight requests `grace_seconds`, then runs the app's lifespan shutdown (stop
consuming, finish in-flight messages, drain the outbox, close pools).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

from shop_common.logging import configure_logging
from shop_common.observability import instrument_fastapi
from shop_common.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(
    settings: S,
    create_app: Callable[[S], Any],
    *,
    host: str,
    port: int,
    grace_seconds: float,
    proxy_headers: bool = True,
) -> None:
    """Configure logging, build the app from settings and serve it until SIGTERM/SIGINT.

    proxy_headers=True lets uvicorn replace the client address and scheme with X-Forwarded-For
    and X-Forwarded-Proto from the peers in its forwarded_allow_ips (FORWARDED_ALLOW_IPS;
    default 127.0.0.1). That suits a service behind the gateway on the same host. An edge, or
    anything that local processes other than a proxy can reach, must pass False: otherwise any
    local client names its own address. The gateway passes False and resolves the client
    itself from its TRUSTED_PROXIES (gateway.forwarding).
    """
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    app = create_app(settings)
    # Server spans for the requests when tracing is on (bootstrap, in the lifespan, installs the
    # SDK; the middleware must be in the app before uvicorn builds its stack).
    instrument_fastapi(app, settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,  # no "server: uvicorn": software and version are nobody's business
        proxy_headers=proxy_headers,
        timeout_graceful_shutdown=math.ceil(grace_seconds),
        lifespan="on",
    )
