"""`python -m gateway`: serve the gateway with uvicorn on HOST:HTTP_PORT."""

from __future__ import annotations

import uvicorn
from shop_common.logging import configure_logging

from gateway.main import create_app
from gateway.settings import Settings


def main() -> None:
    """Configure logging, build the app, serve until SIGTERM/SIGINT (graceful shutdown)."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
