"""What each transcoded route needs: the caller's token and request id (a FastAPI dependency), and
the user service's gRPC calls guarded by its breaker (UserUpstream). Named apart from
gateway.adapters.backends, which calls HTTP backend services for the proxied routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

import grpc
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from shop_common.auth import AuthError, parse_bearer
from shop_common.clients.user import UserClient
from shop_common.resilience import CircuitBreaker, CircuitOpenError
from shop_common.web import request_id_from, unauthorized

from gateway.entrypoints.transcoding.status import problem_from

P = ParamSpec("P")
T = TypeVar("T")
# Declares the scheme in OpenAPI; the header is parsed (not verified) by shop_common.auth.
_bearer_scheme = HTTPBearer(auto_error=False, description="RS256 JWT issued by POST /auth/token")


@dataclass(frozen=True, slots=True)
class Caller:
    """The bearer token to forward (the user service verifies it) and the request id."""

    token: str
    request_id: str | None


async def current_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Caller:
    """The caller of this request; 401 problem when there is no well-formed bearer token."""
    try:
        token = parse_bearer(request.headers.get("authorization"))
    except AuthError as exc:
        raise unauthorized(exc.reason, token_sent=False) from exc
    request_id = request.scope.get("state", {}).get("request_id") or request_id_from(request.scope)
    return Caller(token, request_id)


CallerDep = Annotated[Caller, Depends(current_caller)]


@dataclass(frozen=True, slots=True)
class UserUpstream:
    """The user service as the routes see it: client, breaker and per-call deadline."""

    client_of: Callable[[], UserClient]
    breaker: CircuitBreaker
    timeout_seconds: float | None = None

    @property
    def client(self) -> UserClient:
        """The shared client (looked up per request: the app may create it in its lifespan)."""
        return self.client_of()

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await fn through the breaker; gRPC errors, timeouts and an open breaker → ProblemError."""
        try:
            return await self.breaker.call(fn, *args, **kwargs)
        except (CircuitOpenError, grpc.aio.AioRpcError, TimeoutError) as exc:
            problem = problem_from(exc)
            assert problem is not None  # every caught type has a mapping
            raise problem from exc
