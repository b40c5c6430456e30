"""Running the app under uvicorn: logging, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

from shop_common.web.serve import serve

from payment_service.main import create_app
from payment_service.settings import Settings


def main(settings: Settings | None = None) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get SHUTDOWN_GRACE_SECONDS, then the
    lifespan stops consuming, finishes in-flight messages and drains the outbox."""
    settings = settings or Settings()
    serve(
        settings,
        create_app,
        host=settings.host,
        port=settings.http_port,
        grace_seconds=settings.shutdown_grace_seconds,
    )
