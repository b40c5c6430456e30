"""The ports of the order use cases: the unit of work, its order repository and its outbox.

The use cases (service_layer/orders.py) see only these; adapters/unit_of_work.py implements them
on SQLAlchemy and PostgreSQL, tests/unit/fakes.py in memory. A unit of work is one transaction:
what the use case wrote through `orders` and `outbox` is kept by `commit()`, dropped otherwise.
A repository method may instead run as one self-committing statement (the fast paths: `add`,
`claim_and_move`); it says so, and is atomic by itself.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from shop_common.messaging.events import EventEnvelope

from order_service.domain.listing import Cursor, OrderFilter
from order_service.domain.order import Order, OrderStatus


@dataclass(frozen=True, slots=True)
class EventClaim:
    """What `claim_and_move` did with an incoming event.

    moved: the event was claimed, the order moved to the target and its event went out.
    order None (not moved): the event was handled before, or there is no such order; nothing
    was written. order set (not moved): the event is claimed in this unit of work and the order
    (locked until commit, WITHOUT its lines) is in a state that does not allow the target.
    """

    moved: bool
    order: Order | None = None


class OrderRepository(Protocol):
    """Orders as the use cases read and write them."""

    async def add(
        self, order: Order, *, idempotency_key: str | None, request_hash: str, event: EventEnvelope
    ) -> bool:
        """Insert a new order with its lines and its `event` (self-committing, atomic); False,
        with nothing written, when this user already used the idempotency key."""
        ...

    async def by_idempotency_key(self, user_id: int, key: str) -> tuple[Order, str] | None:
        """The order this user created with this key, and the hash of that request."""
        ...

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Order | None:
        """The order, optionally locked until the unit of work ends."""
        ...

    async def list_page(
        self, order_filter: OrderFilter, after: Cursor | None, limit: int
    ) -> list[Order]:
        """Up to limit orders matching the filter, newest first, strictly after the cursor."""
        ...

    async def save(self, before: Order, after: Order) -> None:
        """Write `after` if the row is still at `before`'s version (else ConcurrentUpdateError)."""
        ...

    async def pending_older_than(self, cutoff: datetime, limit: int) -> list[UUID]:
        """PENDING orders created before cutoff, claimed for this unit of work (skip locked)."""
        ...

    async def claim_and_move(
        self,
        order_id: UUID,
        target: OrderStatus,
        *,
        event_id: UUID,
        consumer: str,
        at: datetime,
        reason: str | None,
        event: EventEnvelope,
    ) -> EventClaim:
        """Claim `event_id` for `consumer` (once ever) and, if the state machine allows it, move
        the order to `target` and emit `event`; see EventClaim for the outcomes."""
        ...

    async def move_many(self, moves: Sequence[Move]) -> list[bool]:
        """On its own, in one transaction: claim_and_move's common case (claim, move, emit) for
        each move the state machine allows; True for those. A move not made (a duplicate, an
        order no longer waiting, no order, a second move of one order) changed nothing: it is
        left to claim_and_move."""
        ...


@dataclass(frozen=True, slots=True)
class Move:
    """One saga result to apply (OrderService.prepare_move): move the order to `target` once
    for the event `event_id`, emitting `event`, whose outbox row carries `headers` (the trace
    context and request id of the message it answers)."""

    order_id: UUID
    target: OrderStatus
    event_id: UUID
    consumer: str
    at: datetime
    reason: str | None
    event: EventEnvelope
    headers: Mapping[str, str] = field(default_factory=dict)


class Outbox(Protocol):
    """Events leaving with the unit of work (published after commit by the outbox relay)."""

    async def add(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        """Emit `event` if and when the unit of work commits."""
        ...


class UnitOfWork(abc.ABC):
    """One transaction over the orders and the outbox: `async with uow: ...; await uow.commit()`.

    Leaving the block without commit() rolls back what was written through it.
    """

    orders: OrderRepository
    outbox: Outbox

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None:
        """Keep what was written in this unit of work."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Drop what was not committed (a no-op after commit) and release the connection."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
