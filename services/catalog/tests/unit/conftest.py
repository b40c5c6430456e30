"""In-memory fakes of the catalog's ports, for the use-case unit tests (no infrastructure).

- FakeUnitOfWork over a shared Store: products, stock, reservations and the outbox; a
  transaction works on a copy and commit() swaps it in, so a rollback leaves the store as it was.
- FakeCache: a dict with the loader calls counted; FakeViews: the views seen.

Test modules cannot import conftest (importlib mode): they take the `world` fixture.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from catalog_service.domain.errors import StockLimitError
from catalog_service.domain.listing import ProductFilter
from catalog_service.domain.product import Category, Product
from catalog_service.domain.stock import MAX_STOCK, Reservation, ReservationStatus, StockLine
from catalog_service.service_layer.catalog import CatalogAdmin, CatalogReads
from catalog_service.service_layer.ports import (
    InboxClaim,
    ProductLoader,
    ReserveAttempt,
    ReserveRequest,
    UnitOfWork,
)
from catalog_service.service_layer.reservations import Reservations
from shop_common.messaging.events import EventEnvelope


@dataclass
class Store:
    products: dict[str, Product] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)
    reservations: dict[UUID, Reservation] = field(default_factory=dict)
    outbox: list[EventEnvelope] = field(default_factory=list)
    inbox: set[tuple[UUID, str]] = field(default_factory=set)
    commits: int = 0


class FakeProducts:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def get(self, sku: str) -> Product | None:
        return self._uow.view.products.get(sku)

    async def page(self, where: ProductFilter, after: str | None, size: int) -> list[Product]:
        rows = sorted(self._uow.view.products.values(), key=lambda p: p.sku)
        text = (where.text or "").lower()
        rows = [
            p
            for p in rows
            if (not text or text in p.name.lower() or text in p.description.lower())
            and (where.category is None or p.category is where.category)
            and (after is None or p.sku > after)
        ]
        return rows[:size]

    async def available(self, sku: str) -> int | None:
        return self._uow.view.stock.get(sku)

    async def set_price(self, sku: str, price: Decimal) -> tuple[Product, Decimal] | None:
        data = self._uow.open()
        old = data.products.get(sku)
        if old is None:
            return None
        data.products[sku] = replace(old, price=price)
        return data.products[sku], old.price

    async def restock(self, sku: str, quantity: int) -> int | None:
        data = self._uow.open()
        if sku not in data.stock:
            return None
        if data.stock[sku] + quantity > MAX_STOCK:
            raise StockLimitError("too much")
        data.stock[sku] += quantity
        return data.stock[sku]


class FakeReservations:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def get(self, order_id: UUID) -> Reservation | None:
        return self._uow.view.reservations.get(order_id)

    async def reserve(self, request: ReserveRequest) -> ReserveAttempt:
        """All at once, like the one SQL statement: claim, check every line, take, record."""
        store, claim, order_id, lines = (
            self._uow.store,
            request.claim,
            request.order_id,
            request.lines,
        )
        if claim is not None:
            if (claim.event_id, claim.consumer) in store.inbox:
                return ReserveAttempt(False, None)
            store.inbox.add((claim.event_id, claim.consumer))
        if order_id in store.reservations:
            return ReserveAttempt(True, None)
        short = next((x.sku for x in lines if store.stock.get(x.sku, 0) < x.quantity), None)
        if short is None:
            for line in lines:
                store.stock[line.sku] -= line.quantity
            store.reservations[order_id] = Reservation(
                order_id, ReservationStatus.RESERVED, tuple(lines), request.expires_at
            )
            if request.reserved is not None:
                store.outbox.append(request.reserved)
            return ReserveAttempt(True, ReservationStatus.RESERVED)
        reason = f"not enough stock of {short}"
        store.reservations[order_id] = Reservation(
            order_id, ReservationStatus.REJECTED, (), None, reason
        )
        if request.rejected is not None:
            payload = {**request.rejected.payload, "reason": reason, "sku": short}
            store.outbox.append(request.rejected.model_copy(update={"payload": payload}))
        return ReserveAttempt(True, ReservationStatus.REJECTED, short)

    async def release(
        self, order_id: UUID, at: datetime, *, expired_by: datetime | None = None
    ) -> list[StockLine] | None:
        data = self._uow.open()
        found = data.reservations.get(order_id)
        allowed = (
            (ReservationStatus.RESERVED,)
            if expired_by
            else (
                ReservationStatus.RESERVED,
                ReservationStatus.CONFIRMED,
            )
        )
        if found is None or found.status not in allowed:
            return None
        if expired_by and (found.expires_at is None or found.expires_at > expired_by):
            return None
        data.reservations[order_id] = replace(found, status=ReservationStatus.RELEASED)
        for line in found.lines:
            data.stock[line.sku] += line.quantity
        return list(found.lines)

    async def settle_batch(
        self, requests: Sequence[ReserveRequest], confirms: Sequence[UUID]
    ) -> tuple[list[ReserveAttempt], int]:
        """Each request, then each confirmation (one at a time: nothing here can fail)."""
        attempts = [await self.reserve(request) for request in requests]
        confirmed = [await self.confirm(order_id) for order_id in confirms]
        return attempts, sum(confirmed)

    async def confirm(self, order_id: UUID) -> bool:
        store = self._uow.store
        found = store.reservations.get(order_id)
        if found is None or found.status is not ReservationStatus.RESERVED:
            return False
        store.reservations[order_id] = replace(
            found, status=ReservationStatus.CONFIRMED, expires_at=None
        )
        return True

    async def expired(self, now: datetime, limit: int) -> list[UUID]:
        rows = [
            r
            for r in self._uow.store.reservations.values()
            if r.status is ReservationStatus.RESERVED and r.expires_at and r.expires_at <= now
        ]
        return [r.order_id for r in rows][:limit]


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: Store) -> None:
        self.store = store
        self._tx: Store | None = None
        self.products = FakeProducts(self)
        self.reservations = FakeReservations(self)

    @property
    def view(self) -> Store:
        return self._tx or self.store

    def open(self) -> Store:
        assert self._tx is not None, "a write outside a unit of work"
        return self._tx

    async def begin(self) -> None:
        self._tx = copy.deepcopy(self.store)

    async def claim(self, claim: InboxClaim) -> bool:
        inbox = self.open().inbox
        if (claim.event_id, claim.consumer) in inbox:
            return False
        inbox.add((claim.event_id, claim.consumer))
        return True

    async def emit(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        self.open().outbox.append(event)

    async def commit(self) -> None:
        tx = self.open()
        self.store.products, self.store.stock = tx.products, tx.stock
        self.store.reservations, self.store.outbox = tx.reservations, tx.outbox
        self.store.inbox = tx.inbox
        self.store.commits += 1
        self._tx = None

    async def rollback(self) -> None:
        self._tx = None


@dataclass
class FakeCache:
    entries: dict[str, Product | None] = field(default_factory=dict)
    loads: int = 0

    async def get(self, sku: str, loader: ProductLoader) -> Product | None:
        if sku not in self.entries:
            self.loads += 1
            self.entries[sku] = await loader()
        return self.entries[sku]

    async def put(self, product: Product) -> None:
        self.entries[product.sku] = product


@dataclass
class FakeViews:
    seen_skus: list[str] = field(default_factory=list)

    async def seen(self, sku: str) -> None:
        self.seen_skus.append(sku)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class World:
    store: Store
    cache: FakeCache
    views: FakeViews
    reads: CatalogReads
    admin: CatalogAdmin
    reservations: Reservations
    clock: list[datetime]


@pytest.fixture
def world() -> World:
    store = Store()
    for n, category in enumerate((Category.BOOKS, Category.TOYS, Category.BOOKS), start=1):
        sku = f"TST-{n:03d}"
        store.products[sku] = Product(
            sku, f"Thing {n}", "a test thing", category, Decimal("9.99"), "EUR"
        )
        store.stock[sku] = 10
    cache, views = FakeCache(), FakeViews()
    clock = [NOW]

    def units() -> FakeUnitOfWork:
        return FakeUnitOfWork(store)

    return World(
        store,
        cache,
        views,
        CatalogReads(units, cache, views),
        CatalogAdmin(units, cache),
        Reservations(units, 60, clock=lambda: clock[0]),
        clock,
    )
