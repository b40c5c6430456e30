"""The unit of work the writing use cases run in: one transaction holding the change, its
outbox event and its subscriber notification (adapters/unit_of_work.py is the SQL one,
tests/unit/fakes.py an in-memory one).

    async with uow_factory() as uow:
        user = await uow.users.add(...)
        uow.emit(UserEventType.CREATED, user, correlation_id=request_id)
        await uow.commit()

Leaving the block without commit() rolls everything back, the emitted events included.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from user_service.domain.field_mask import UserPatch
from user_service.domain.model import User, UserEventType


class UserRepository(Protocol):
    """User writes inside a unit of work's transaction."""

    async def add(self, email: str, name: str, roles: tuple[str, ...], password_hash: str) -> User:
        """Insert a user; AlreadyExists when the email is taken (case-insensitively)."""
        ...

    async def update(self, user_id: int, patch: UserPatch, password_hash: str | None) -> User:
        """Apply patch (only its non-None fields); NotFound / AlreadyExists."""
        ...

    async def remove(self, user_id: int) -> User:
        """Delete the user and return it; NotFound when absent."""
        ...


@dataclass(frozen=True)
class UserChange:
    """An event emitted in a unit of work: written (outbox row + notification) at commit."""

    event_type: UserEventType
    user: User
    correlation_id: str | None


class AbstractUnitOfWork(abc.ABC):
    """One transaction: `users` to write with, `emit()` to record events, `commit()`."""

    users: UserRepository

    def __init__(self) -> None:
        self.pending: list[UserChange] = []
        self.committed = False

    async def __aenter__(self) -> Self:
        self.pending = []
        self.committed = False
        await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    def emit(self, event_type: UserEventType, user: User, *, correlation_id: str | None) -> None:
        """Record an event of this change; it is published only if the unit commits."""
        self.pending.append(UserChange(event_type, user, correlation_id))

    async def commit(self) -> None:
        """Write the pending events and commit the transaction."""
        await self._commit(list(self.pending))
        self.committed = True

    @abc.abstractmethod
    async def _begin(self) -> None:
        """Open the transaction and set `users`."""

    @abc.abstractmethod
    async def _commit(self, changes: list[UserChange]) -> None:
        """Write changes' events in the transaction, then commit it."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """End the transaction, rolling back what was not committed."""


UnitOfWorkFactory = Callable[[], AbstractUnitOfWork]
