"""The HTTP edge: `create_app(settings, **overrides)` and the routers it mounts.

- pages (public shells): GET / (storefront), GET /console (system console), /static/**;
- public API: POST /web/signup;
- a shopper's API (bearer token): GET /web/orders/{id}/events (SSE);
- the console's API (admin): /web/console/** (entrypoints.console_api);
- internal: POST /v1/traces (OTLP/HTTP; not routed by the gateway).

The app's lifespan runs `bootstrap(settings, **overrides)` and keeps its App in
`app.state.app`. Every response carries the security headers of entrypoints.security.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from shop_common.web import bearer_principal, instrument_app, service_app, token_verifier
from shop_common.web.chaos import install_chaos

from web_service.bootstrap import App, bootstrap
from web_service.entrypoints.api import public_router, shopper_router
from web_service.entrypoints.console_api import console_router
from web_service.entrypoints.errors import install_web_errors
from web_service.entrypoints.pages import STATIC_DIR, pages_router
from web_service.entrypoints.security import SecurityHeadersMiddleware
from web_service.entrypoints.traces import traces_router
from web_service.settings import Settings

DESCRIPTION = """\
The storefront (/) and the system console (/console): server-rendered pages, static ES
modules, and a small JSON + Server-Sent Events API under /web. Errors are RFC 9457 problem
details (`application/problem+json`).
"""


def create_app(settings: Settings | None = None, **overrides: Any) -> FastAPI:
    """The app; its lifespan runs bootstrap(settings, **overrides) (adapters for tests)."""
    settings = settings or Settings()
    app = service_app(
        title="Web service",
        description=DESCRIPTION,
        settings=settings,
        start=lambda: bootstrap(settings, **overrides),
    )

    async def started() -> bool:
        return isinstance(app.state.app, App)

    instrument_app(app, checks={"started": started}, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    install_web_errors(app)
    install_chaos(app, settings)  # chaos switches: admin only, off in production
    authenticated = [Depends(bearer_principal(token_verifier(settings)))]
    app.include_router(pages_router)
    app.include_router(public_router)
    app.include_router(shopper_router, dependencies=authenticated)
    app.include_router(console_router, dependencies=authenticated)
    app.include_router(traces_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
