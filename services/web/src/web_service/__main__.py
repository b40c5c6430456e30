"""`python -m web_service`: serve the app with uvicorn on HOST:HTTP_PORT until SIGTERM/SIGINT.

In-flight requests get SHUTDOWN_GRACE_SECONDS (the live streams end with the process); then the
lifespan (bootstrap's exit) stops the console and closes the gateway client.
"""

from shop_common.web.serve import serve

from web_service.entrypoints.http import create_app
from web_service.settings import Settings

settings = Settings()
serve(
    settings,
    create_app,
    host=settings.host,
    port=settings.http_port,
    grace_seconds=settings.shutdown_grace_seconds,
)
