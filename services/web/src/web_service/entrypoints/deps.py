"""Narrow FastAPI dependencies: the started App (503 while starting), the caller's token."""

# No `from __future__ import annotations`: FastAPI must see the Annotated aliases.
from typing import Annotated

from fastapi import Depends, Request
from shop_common.auth import Principal
from shop_common.web import ProblemError, bearer_principal, require_role

from web_service.bootstrap import App


async def running(request: Request) -> App:
    """The started service (503 while it starts or stops)."""
    app = getattr(request.app.state, "app", None)
    if not isinstance(app, App):
        raise ProblemError(503, detail="the service is starting", headers={"Retry-After": "1"})
    return app


def bearer_token(request: Request) -> str:
    """The raw bearer token (verified already by the router's bearer_principal dependency),
    passed on to the public API so that each service checks the caller itself."""
    header = request.headers.get("authorization", "")
    return header.partition(" ")[2].strip()


Running = Annotated[App, Depends(running)]
Token = Annotated[str, Depends(bearer_token)]
AdminCaller = Annotated[Principal, Depends(require_role("admin"))]
__all__ = ["AdminCaller", "Running", "Token", "bearer_principal"]
