"""What the use cases need from the outside, as Protocols (implemented in adapters/, faked in
tests/unit/fakes.py): the read side of the user store, password hashing and the update feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from user_service.domain.listing import UserFilter
from user_service.domain.model import User, UserUpdate


class UserReads(Protocol):
    """Reads outside any transaction (GetUser is the hot path: no unit of work around it)."""

    async def get(self, user_id: int) -> User:
        """The user; NotFound otherwise."""
        ...

    async def page(self, user_filter: UserFilter, after_id: int, limit: int) -> list[User]:
        """Up to limit users with id > after_id matching the filter, in id order (keyset)."""
        ...

    async def credentials(self, email: str) -> tuple[User, str] | None:
        """The user and password hash for an email (case-insensitive), or None."""
        ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (argon2id in production)."""

    async def hash(self, password: str) -> str:
        """The hash to store."""
        ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when password matches; a None hash is checked against a dummy (constant time)."""
        ...


class Subscription(Protocol):
    """An attached stream of updates: `async for update in subscription`, then `close()`.

    Iteration raises domain.errors.SubscriptionLost when events may have been missed.
    """

    def close(self) -> None:
        """Detach (idempotent)."""
        ...

    def __aiter__(self) -> AsyncIterator[UserUpdate]:
        """The updates, in commit order."""
        ...


class UpdateFeed(Protocol):
    """Committed user changes, fanned out to local subscribers."""

    @property
    def subscriber_count(self) -> int:
        """Streams currently attached (tests use it to prove nothing leaks)."""
        ...

    def subscribe(self, user_ids: frozenset[int]) -> Subscription:
        """Attach now (changes from this point on) to these users' changes (empty: everyone's)."""
        ...
