"""Per-route access decision: verify the bearer token (401) and the route's roles (403)."""

from __future__ import annotations

from shop_common.auth import AuthError, Principal, TokenVerifier, parse_bearer

from gateway.domain.routes import Route


class UnauthorizedError(Exception):
    """No valid token (→ 401 with WWW-Authenticate)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def www_authenticate(self) -> str:
        """RFC 6750 challenge naming the failure without echoing the token."""
        reason = self.reason.replace('"', "'")
        if self.reason == "missing bearer token":
            return 'Bearer realm="shop"'
        return f'Bearer realm="shop", error="invalid_token", error_description="{reason}"'


class ForbiddenError(Exception):
    """A valid token without the route's role (→ 403)."""


def authorize(route: Route, authorization: str | None, verifier: TokenVerifier) -> Principal | None:
    """The caller's principal (None on a public route without a token); raises on refusal."""
    if not route.auth and not authorization:
        return None
    try:
        principal = verifier.verify(parse_bearer(authorization))
    except AuthError as exc:
        raise UnauthorizedError(exc.reason) from exc
    missing = set(route.roles) - principal.roles
    if missing:
        raise ForbiddenError(f"requires role(s): {', '.join(sorted(missing))}")
    return principal
