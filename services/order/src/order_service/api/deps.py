"""Dependencies of the order API: the running runtime and the verified caller.

No `from __future__ import annotations`: FastAPI must resolve the local Annotated aliases.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from shop_common.auth import Principal, parse_bearer
from shop_common.web import ProblemError

from order_service.bootstrap import OrderRuntime


async def get_runtime(request: Request) -> OrderRuntime:
    """The runtime the lifespan started (503 while the app is starting or stopping).

    `async` so that FastAPI calls it in the event loop (a plain `def` costs a threadpool hop).
    """
    runtime: OrderRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ProblemError(
            503, detail="the order service is not running", headers={"Retry-After": "1"}
        )
    return runtime


RuntimeDep = Annotated[OrderRuntime, Depends(get_runtime)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified caller: user id, admin or not, and the bearer token it presented."""

    user_id: int
    is_admin: bool
    token: str


CallerDependency = Callable[..., Awaitable[Caller]]


def caller_dependency(auth: Callable[..., Awaitable[Principal]]) -> CallerDependency:
    """A dependency turning the verified principal into a Caller (403 for non-user subjects)."""

    async def caller(request: Request, principal: Annotated[Principal, Depends(auth)]) -> Caller:
        try:
            user_id = principal.user_id
        except ValueError as exc:
            raise ProblemError(403, detail="the token's subject is not a user") from exc
        token = parse_bearer(request.headers.get("authorization"))  # verified by `auth`
        return Caller(user_id, principal.is_admin, token)

    return caller


def request_id(request: Request) -> str | None:
    """The request id shop_common.web assigned (forwarded to the user service)."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None
