"""`python -m gateway`: serve the gateway with uvicorn on HOST:HTTP_PORT."""

from __future__ import annotations

from shop_common.web.serve import serve

from gateway.entrypoints.app import create_app
from gateway.settings import Settings


def main() -> None:
    """Configure logging, build the app, serve until SIGTERM/SIGINT (graceful shutdown).

    proxy_headers off: the gateway is the edge, so a client's X-Forwarded-For is not trusted.
    """
    settings = Settings()
    serve(
        settings,
        create_app,
        host=settings.host,
        port=settings.http_port,
        grace_seconds=10,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
