"""The FastAPI application every HTTP service builds, in one shape (docs/service-anatomy.md).

`service_app` makes the app whose lifespan enters the service's composition root and keeps what
it started in `app.state.app` (None while the service starts or stops: the routes' dependencies
answer 503 then), with `redirect_slashes=False` (behind the gateway a 307 to the trailing-slash
twin would carry this process's own address in Location: an unknown path is a 404 problem,
never a redirect). `token_verifier` is the one way a service verifies the gateway's tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from shop_common.auth import CachingTokenVerifier, TokenVerifier
from shop_common.settings import ServiceSettings


def service_app(
    *,
    title: str,
    description: str,
    settings: ServiceSettings,
    start: Callable[[], AbstractAsyncContextManager[object]],
    version: str = "1.0.0",
) -> FastAPI:
    """The app; its lifespan runs `start()` (the service's `bootstrap(settings, **overrides)`)
    and holds what it yields in `app.state.app` until uvicorn has stopped taking requests and
    finished those in flight."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start() as started:
            app.state.app = started
            try:
                yield
            finally:
                app.state.app = None

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.app = None
    return app


def token_verifier(settings: ServiceSettings) -> TokenVerifier:
    """Verifies the gateway's RS256 tokens with the configured public keys; a verified token is
    cached until its exp, so a shopper's token verifies once, not per request."""
    return CachingTokenVerifier(
        settings.jwt_public_keys,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_leeway_seconds,
    )
