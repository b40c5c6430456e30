"""Running the app under uvicorn: logging, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import math

import uvicorn
from shop_common.logging import configure_logging

from payment_service.main import create_app
from payment_service.settings import Settings


def main(settings: Settings | None = None) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get SHUTDOWN_GRACE_SECONDS, then the
    lifespan stops consuming, finishes in-flight messages and drains the outbox."""
    settings = settings or Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.http_port,
        log_config=None,  # structlog owns the root logger
        access_log=False,  # RequestContextMiddleware writes one access line per request
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        lifespan="on",
    )
