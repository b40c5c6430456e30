"""The narrow FastAPI dependencies of the /orders routes: each hands an endpoint one thing of
the started App (503 while the app is starting or stopping), or the verified Caller.

No `from __future__ import annotations`: FastAPI must resolve the local Annotated aliases.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from shop_common.auth import Principal, parse_bearer
from shop_common.web import ProblemError
from shop_common.web.security import PrincipalDependency

from order_service.bootstrap import App
from order_service.domain.listing import OrderPageTokens, PageSizes
from order_service.service_layer.orders import OrderService, PlaceOrder

# Declares the scheme in OpenAPI (as shop_common.web's own); the app's verifier checks the token.
_BEARER = HTTPBearer(auto_error=False, description="RS256 JWT issued by the gateway")


# ----- dependencies ---------------------------------------------------------------------------
def _started(request: Request) -> App:
    app: App | None = getattr(request.app.state, "app", None)
    if app is None:
        raise ProblemError(
            503, detail="the order service is not running", headers={"Retry-After": "1"}
        )
    return app


# `async` so that FastAPI calls them in the event loop (a plain `def` costs a threadpool hop).
async def order_service(request: Request) -> OrderService:
    """The order use cases."""
    return _started(request).orders


async def place_order(request: Request) -> PlaceOrder:
    """The POST /orders use case (user check, then create)."""
    return _started(request).place_order


async def page_tokens(request: Request) -> OrderPageTokens:
    """The codec of GET /orders page tokens."""
    return _started(request).page_tokens


async def page_sizes(request: Request) -> PageSizes:
    """The default and largest GET /orders page sizes."""
    return _started(request).page_sizes


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified caller: user id, admin or not, and the bearer token it presented."""

    user_id: int
    is_admin: bool
    token: str


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Caller:
    """The verified principal as a Caller (401 without a valid token, 403 for non-users)."""
    authenticate: PrincipalDependency = request.app.state.authenticate
    principal: Principal = await authenticate(request, credentials)
    try:
        user_id = principal.user_id
    except ValueError as exc:
        raise ProblemError(403, detail="the token's subject is not a user") from exc
    token = parse_bearer(request.headers.get("authorization"))  # verified above
    return Caller(user_id, principal.is_admin, token)


def request_id(request: Request) -> str | None:
    """The request id shop_common.web assigned (forwarded to the user service)."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


CallerDep = Annotated[Caller, Depends(caller)]
OrdersDep = Annotated[OrderService, Depends(order_service)]


def in_utc(moment: datetime | None) -> datetime | None:
    """The moment in UTC; 400 for the few representable offsets that leave the calendar."""
    try:
        return moment.astimezone(UTC) if moment is not None else None
    except (OverflowError, ValueError) as exc:
        raise ProblemError(400, detail=f"{moment} is out of range") from exc
