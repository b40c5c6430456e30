"""The login use case (POST /auth/token): throttle, authenticate, count the verdict, sign.

Order matters: the throttle is asked BEFORE the password reaches the user service (argon2 is
deliberately expensive); exactly one of failed / succeeded / unjudged follows every admitted
attempt (gateway.domain.login_throttle explains the policy).
"""

from __future__ import annotations

from typing import Protocol

from shop_common.logging import get_logger

from gateway.domain.login import (
    AuthenticatedUser,
    AuthenticatorUnavailableError,
    CredentialsRefusedError,
    IssuedToken,
    LoginRefusedError,
    LoginThrottledError,
)
from gateway.domain.login_throttle import Admission, Failure

_log = get_logger(__name__)


class Authenticator(Protocol):
    """Checks a username and password (the user service)."""

    async def authenticate(self, username: str, password: str) -> AuthenticatedUser:
        """The user; CredentialsRefusedError or AuthenticatorUnavailableError."""
        ...


class Throttle(Protocol):
    """begin() before the password is checked; then exactly one of failed/succeeded/unjudged."""

    async def begin(self, username: str, address: str) -> Admission: ...
    async def failed(self, username: str, address: str) -> Failure: ...
    async def succeeded(self, username: str, address: str) -> None: ...
    async def unjudged(self, username: str, address: str) -> None: ...


class Issuer(Protocol):
    """Signs access tokens (shop_common.auth.TokenIssuer)."""

    @property
    def ttl_seconds(self) -> int: ...

    def issue(self, subject: str, roles: list[str]) -> str: ...


class LoginService:
    """Exchanges credentials for a token; throttle None means LOGIN_THROTTLE_ENABLED=false."""

    def __init__(
        self, authenticator: Authenticator, issuer: Issuer, throttle: Throttle | None
    ) -> None:
        self._authenticator = authenticator
        self._issuer = issuer
        self._throttle = throttle

    async def login(self, username: str, password: str, client: str) -> IssuedToken:
        """The token; LoginThrottledError, LoginRefusedError or AuthenticatorUnavailableError."""
        throttle = self._throttle
        if throttle is not None:
            admission = await throttle.begin(username, client)
            if not admission.admitted:
                raise LoginThrottledError(admission.retry_after_seconds)
        try:
            user = await self._authenticator.authenticate(username, password)
        except CredentialsRefusedError as exc:
            failure = await throttle.failed(username, client) if throttle is not None else None
            raise LoginRefusedError(failure) from exc
        except AuthenticatorUnavailableError as exc:
            if throttle is not None:
                await throttle.unjudged(username, client)
            _log.warning("authenticate_failed", code=exc.code, details=exc.details)
            raise
        except Exception:  # no verdict on the password (not a cancellation: that is no answer)
            if throttle is not None:
                await throttle.unjudged(username, client)
            raise
        if throttle is not None:
            await throttle.succeeded(username, client)
        token = self._issuer.issue(user.user_id, list(user.roles))
        return IssuedToken(token, self._issuer.ttl_seconds)
