"""The ports the use cases work through: repositories, the UnitOfWork, the product cache and the
view counter. adapters/ holds the PostgreSQL and Redis implementations, tests/unit/fakes.py the
in-memory ones.

Outside `async with uow`, a repository read is one statement on its own. Inside it, every call
joins one transaction, which `commit()` commits; leaving the block without a commit rolls it
back.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from shop_common.messaging.events import EventEnvelope

from catalog_service.domain.listing import ProductFilter
from catalog_service.domain.product import Product
from catalog_service.domain.stock import Reservation, ReservationStatus, StockLine


class ProductRepository(Protocol):
    """Products and their stock."""

    async def get(self, sku: str) -> Product | None:
        """One product (no transaction needed)."""
        ...

    async def page(self, where: ProductFilter, after: str | None, size: int) -> list[Product]:
        """Up to size products matching where, by sku, after the sku `after`."""
        ...

    async def available(self, sku: str) -> int | None:
        """The sku's available stock; None for an unknown sku."""
        ...

    async def set_price(self, sku: str, price: Decimal) -> tuple[Product, Decimal] | None:
        """In the transaction: the product at its new price and its old price (None: unknown)."""
        ...

    async def restock(self, sku: str, quantity: int) -> int | None:
        """In the transaction: add quantity, return the new available (None: unknown sku);
        StockLimitError past MAX_STOCK."""
        ...


@dataclass(frozen=True, slots=True)
class InboxClaim:
    """The incoming event a write is the effect of (consumed once per consumer)."""

    event_id: UUID
    consumer: str


@dataclass(frozen=True, slots=True)
class ReserveAttempt:
    """What `reserve` did: claimed False (a redelivery: nothing written); status None (the
    order had a record already: nothing written but the claim); short: the first sku that was
    missing or short (REJECTED)."""

    claimed: bool
    status: ReservationStatus | None
    short: str | None = None


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    """One reservation to make (Reservations.prepare): the order, its lines, when it expires, the
    event it answers and the two events it may emit, and the headers (trace context, request
    id) of the message it answers, for those events' outbox rows."""

    order_id: UUID
    lines: tuple[StockLine, ...]
    expires_at: datetime
    claim: InboxClaim | None = None
    reserved: EventEnvelope | None = None
    rejected: EventEnvelope | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class ReservationRepository(Protocol):
    """Reservations per order, and the stock they take and give back."""

    async def get(self, order_id: UUID) -> Reservation | None:
        """The order's reservation, with its lines."""
        ...

    async def reserve(self, request: ReserveRequest) -> ReserveAttempt:
        """On its own, atomically (it commits by itself): claim the incoming event (when the
        request has a claim; if it was claimed before, nothing happens), then take every line
        (sorted, distinct skus) if each has `available >= quantity`, else none, and record the
        reservation RESERVED (expiring at expires_at) or REJECTED, emitting `reserved` or
        `rejected` (the latter's reason and sku filled in); nothing more if the order has a
        record already."""
        ...

    async def settle_batch(
        self, requests: Sequence[ReserveRequest], confirms: Sequence[UUID]
    ) -> tuple[list[ReserveAttempt], int]:
        """On its own, in one transaction, all or nothing: each request as `reserve` does it, in
        the order given (an earlier order takes the stock first), then RESERVED → CONFIRMED for
        the orders in `confirms`. The attempts (one per request) and how many were confirmed."""
        ...

    async def release(
        self, order_id: UUID, at: datetime, *, expired_by: datetime | None = None
    ) -> list[StockLine] | None:
        """In the transaction: mark a RESERVED or CONFIRMED reservation RELEASED and give its
        stock back; its lines, or None when there was nothing to release. With expired_by, only
        a RESERVED one that expired by then (a confirmed order keeps its stock)."""
        ...

    async def confirm(self, order_id: UUID) -> bool:
        """On its own: RESERVED → CONFIRMED (it no longer expires); False otherwise."""
        ...

    async def expired(self, now: datetime, limit: int) -> list[UUID]:
        """Orders whose RESERVED reservation expired by now, oldest first."""
        ...


class UnitOfWork(abc.ABC):
    """One transaction over products, stock, reservations and the outbox."""

    products: ProductRepository
    reservations: ReservationRepository

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
    async def claim(self, claim: InboxClaim) -> bool:
        """In the transaction: record the incoming event as handled; False if it was before."""

    @abc.abstractmethod
    async def emit(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        """Queue event for publication when the transaction commits (outbox)."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit the transaction."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Roll back what was not committed (a no-op when nothing is open)."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
ProductLoader = Callable[[], Awaitable[Product | None]]


class ProductCache(Protocol):
    """Product reads in front of the database, and what a write tells it."""

    async def get(self, sku: str, loader: ProductLoader) -> Product | None:
        """The cached product, else loader() (once across callers), cached (None too, briefly)."""
        ...

    async def put(self, product: Product) -> None:
        """Write-through: the stored product replaces the cached one on every instance."""
        ...


class ViewCounter(Protocol):
    """Counts product views; the counts reach the database later (write-behind)."""

    async def seen(self, sku: str) -> None:
        """One more view of sku."""
        ...
