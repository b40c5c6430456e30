"""`python -m order_service`: serve the app with uvicorn on HOST:HTTP_PORT until SIGTERM."""

from __future__ import annotations

import uvicorn
from shop_common.logging import configure_logging

from order_service.main import create_app
from order_service.settings import Settings


def main() -> None:
    """Run the server; SIGTERM/SIGINT stop it gracefully (requests, then messages, then relay)."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        lifespan="on",
    )


if __name__ == "__main__":
    main()
