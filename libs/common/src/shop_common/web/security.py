"""Bearer-token authentication and role checks as FastAPI dependencies."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shop_common.auth import AuthError, Principal, TokenVerifier, parse_bearer
from shop_common.web.problems import ProblemError

PrincipalDependency = Callable[..., Awaitable[Principal]]
# Declares the scheme in OpenAPI; the header itself is parsed by shop_common.auth.
_bearer_scheme = HTTPBearer(auto_error=False, description="RS256 JWT issued by the gateway")


def _challenge(realm: str, error: str | None = None, description: str | None = None) -> str:
    """An RFC 6750 WWW-Authenticate value (no error code when no token was sent)."""
    value = f'Bearer realm="{realm}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return value


def unauthorized(reason: str, *, realm: str = "shop", token_sent: bool = True) -> ProblemError:
    """A 401 problem carrying the RFC 6750 challenge."""
    challenge = _challenge(realm, "invalid_token", reason) if token_sent else _challenge(realm)
    return ProblemError(401, detail=reason, headers={"WWW-Authenticate": challenge})


def bearer_principal(
    verifier: TokenVerifier | Callable[[], TokenVerifier], *, realm: str = "shop"
) -> PrincipalDependency:
    """A dependency verifying `Authorization: Bearer` and returning the caller's Principal.

    `verifier` may be a callable returning the verifier, for apps that build it in their
    lifespan. The principal is also stored in `request.state.principal` (require_role and
    the access log read it there). Failure → 401 problem with WWW-Authenticate.
    """

    def current_verifier() -> TokenVerifier:
        return verifier if isinstance(verifier, TokenVerifier) else verifier()

    async def principal(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    ) -> Principal:
        header = request.headers.get("authorization")
        try:
            token = parse_bearer(header)
        except AuthError as exc:
            raise unauthorized(exc.reason, realm=realm, token_sent=False) from exc
        try:
            verified = current_verifier().verify(token)
        except AuthError as exc:
            raise unauthorized(exc.reason, realm=realm) from exc
        request.state.principal = verified
        return verified

    return principal


def require_role(
    role: str, auth: PrincipalDependency | None = None, *, realm: str = "shop"
) -> PrincipalDependency:
    """A dependency returning the Principal when it holds role; 403 problem otherwise.

    With `auth` (a bearer_principal dependency) it authenticates first; without it, it reads
    the principal an earlier dependency stored (e.g. `APIRouter(dependencies=[Depends(auth)])`)
    and answers 401 when there is none.
    """

    def check(principal: Principal) -> Principal:
        if role not in principal.roles:
            raise ProblemError(403, detail=f"requires the {role} role")
        return principal

    if auth is not None:

        async def authenticated_with_role(
            principal: Annotated[Principal, Depends(auth)],
        ) -> Principal:
            return check(principal)

        return authenticated_with_role

    async def stored_with_role(request: Request) -> Principal:
        principal = getattr(request.state, "principal", None)
        if not isinstance(principal, Principal):
            raise unauthorized("missing bearer token", realm=realm, token_sent=False)
        return check(principal)

    return stored_with_role
