"""The outcomes of a login (POST /auth/token) besides a token: each one is a different answer."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.login_throttle import Failure


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """Who the user service says the credentials belong to."""

    user_id: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and how long it lives."""

    access_token: str
    expires_in: int


class CredentialsRefusedError(Exception):
    """The user service judged the credentials wrong (or unreadable)."""


class AuthenticatorUnavailableError(Exception):
    """The user service could not judge the credentials (down, too slow, ...)."""

    def __init__(self, code: str, details: str | None) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class LoginThrottledError(Exception):
    """The account or the client is closed for a while (→ 429 with Retry-After)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class LoginRefusedError(Exception):
    """Wrong credentials (→ 401); failure is the client's budget when the throttle is on."""

    def __init__(self, failure: Failure | None) -> None:
        super().__init__("the email or password is wrong")
        self.failure = failure
