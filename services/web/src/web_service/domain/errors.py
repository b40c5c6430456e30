"""Domain errors; the HTTP edge maps each to one problem+json status."""

from __future__ import annotations


class WebError(Exception):
    """Base of the web service's errors."""


class InvalidSignUp(WebError):
    """The sign-up form breaks a rule (→ 422)."""


class AccountExists(WebError):
    """The email already has an account (→ 409)."""


class Refused(WebError):
    """The public API refused a call made for the caller (401, 403, 404, 409, 422: passed on)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Unavailable(WebError):
    """The public API (or a service behind it) cannot answer now (→ 503 + Retry-After)."""

    def __init__(self, detail: str, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
