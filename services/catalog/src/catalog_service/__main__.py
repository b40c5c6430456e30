"""`python -m catalog_service`: serve the app with uvicorn on HOST:HTTP_PORT until SIGTERM/SIGINT.

In-flight requests get SHUTDOWN_GRACE_SECONDS; then the lifespan (bootstrap's exit) stops the
sweeper, flushes the view counters and drains the outbox.
"""

from shop_common.web.serve import serve

from catalog_service.entrypoints.http import create_app
from catalog_service.settings import Settings

settings = Settings()
serve(
    settings,
    create_app,
    host=settings.host,
    port=settings.http_port,
    grace_seconds=settings.shutdown_grace_seconds,
)
