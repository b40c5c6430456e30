"""`python -m order_service`: serve the app with uvicorn on HOST:HTTP_PORT until SIGTERM."""

from __future__ import annotations

from shop_common.web.serve import serve

from order_service.entrypoints.http import create_app
from order_service.settings import Settings


def main() -> None:
    """Run the server; SIGTERM/SIGINT stop it gracefully (requests, then messages, then relay)."""
    settings = Settings()
    serve(
        settings,
        create_app,
        host=settings.host,
        port=settings.http_port,
        grace_seconds=settings.shutdown_grace_seconds,
    )


if __name__ == "__main__":
    main()
