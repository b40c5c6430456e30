"""What the use cases need of the user service (the `UserDirectory` port) and its errors.

adapters/users.py implements it (gRPC behind cache, breaker, retry and deadline); the HTTP
entrypoint maps the errors to problem+json.
"""

from __future__ import annotations

from typing import Protocol


class UnknownUserError(Exception):
    """The caller's user does not exist (deleted after the token was issued)."""


class UserAccessDeniedError(Exception):
    """The user service refused the forwarded token (401/403 at the edge)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UserServiceUnavailableError(Exception):
    """The user service cannot answer now and the user is not cached (503 + Retry-After)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class UserDirectory(Protocol):
    """Who the callers are: resolves a user (cached), forgets one that changed."""

    async def require(self, user_id: int, *, token: str, request_id: str | None = None) -> object:
        """The user record, or one of the errors above. `token` is the caller's own bearer
        token, forwarded to the user service."""
        ...

    async def evict(self, user_id: int) -> None:
        """Drop what is cached of this user (every instance)."""
        ...
