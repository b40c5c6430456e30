"""How a request reaches the running gateway: the App that bootstrap built, held per FastAPI app,
and the small Depends functions that give each endpoint only the object it needs."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.types import Scope

from gateway.bootstrap import App
from gateway.service_layer.login import LoginService
from gateway.settings import Settings


class AppHolder:
    """Filled by the lifespan (from bootstrap); the pipeline and the endpoints read it."""

    def __init__(self) -> None:
        self.app: App | None = None

    def get(self) -> App:
        """The running App; RuntimeError before the lifespan started it."""
        if self.app is None:
            raise RuntimeError("the gateway is not started (lifespan not run)")
        return self.app


def app_of(request: Request | Scope) -> App:
    """The App of the FastAPI app serving this request."""
    fastapi_app = request.app if isinstance(request, Request) else request["app"]
    holder: AppHolder = fastapi_app.state.gateway
    return holder.get()


def login_service_of(request: Request) -> LoginService:
    """POST /auth/token's use case."""
    return app_of(request).login


def settings_of(request: Request) -> Settings:
    """The settings the gateway runs with (the client address resolver reads them)."""
    return app_of(request).settings


def jwks_of(request: Request) -> dict[str, Any]:
    """The JSON Web Key Set (computed once at start)."""
    return app_of(request).jwks
