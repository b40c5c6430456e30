"""The ports the use cases write through: PaymentRepository and the abstract UnitOfWork.

Outside `async with uow`, each repository call is one statement that commits by itself (the
reads, and `record_once`, the charge path's one-statement fast path). Inside it, `add`, `claim`
and `emit` share one transaction, which `commit()` commits; leaving the block without a commit
rolls it back. adapters/unit_of_work.py holds the SQLAlchemy implementation, the unit tests an
in-memory one.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from shop_common.messaging.events import EventEnvelope

from payment_service.domain.payment import Payment


class PaymentRepository(Protocol):
    """Payments of orders (at most one of each kind per order)."""

    async def get(self, payment_id: UUID) -> Payment | None:
        """One payment by id."""
        ...

    async def for_order(self, order_id: UUID) -> list[Payment]:
        """The payments of one order, oldest first."""
        ...

    async def charged(self, order_id: UUID) -> bool:
        """The order has a charge (succeeded or declined)."""
        ...

    async def record_once(
        self, payment: Payment, *, cause_id: UUID, consumer: str, event: EventEnvelope
    ) -> bool:
        """Claim cause_id for consumer, store payment and queue event, all or nothing, as one
        statement; False (nothing written) for a duplicate delivery or a second payment of the
        same kind for the order."""
        ...

    async def add(self, payment: Payment) -> bool:
        """Store payment in the unit of work's transaction; False if the order has one of that
        kind already."""
        ...


class UnitOfWork(abc.ABC):
    """One transaction over the payments, the inbox and the outbox."""

    payments: PaymentRepository

    async def __aenter__(self) -> Self:
        await self.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()  # a no-op after commit()

    @abc.abstractmethod
    async def begin(self) -> None:
        """Open the transaction."""

    @abc.abstractmethod
    async def claim(self, event_id: UUID, consumer: str) -> bool:
        """Record event_id as handled by consumer; False when it was already (inbox)."""

    @abc.abstractmethod
    async def emit(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        """Queue event for publication when the transaction commits (outbox)."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit the transaction."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Roll back what was not committed."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
