"""In-memory fakes of the order service's ports, for the use-case unit tests (no infrastructure).

FakeUnitOfWork holds a FakeOrderRepository over a shared FakeStore and a FakeOutbox. Writes made
through the session-like methods are staged and applied on commit(); the two self-committing
fast paths (`add`, the move of `claim_and_move`) apply at once, as their SQL does. Events that
left (committed) are in `store.events`; `committed` tells whether commit() was called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from order_service.domain.listing import Cursor, OrderFilter
from order_service.domain.order import ConcurrentUpdateError, Order, OrderStatus
from order_service.service_layer.prices import Price, UnknownSkuError
from order_service.service_layer.unit_of_work import EventClaim, Move, UnitOfWork
from order_service.service_layer.users import UnknownUserError
from shop_common.messaging.events import EventEnvelope


@dataclass
class FakeStore:
    """The "database": orders, idempotency keys, inbox claims and the outbox (sent events)."""

    orders: dict[UUID, Order] = field(default_factory=dict)
    keys: dict[tuple[int, str], tuple[UUID, str]] = field(default_factory=dict)
    inbox: set[tuple[UUID, str]] = field(default_factory=set)
    events: list[EventEnvelope] = field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        return [e.event_type for e in self.events]


class FakeOrderRepository:
    """The OrderRepository port over a FakeStore; staged writes go to the unit of work."""

    def __init__(self, store: FakeStore, uow: FakeUnitOfWork) -> None:
        self.store = store
        self.uow = uow

    async def add(
        self, order: Order, *, idempotency_key: str | None, request_hash: str, event: EventEnvelope
    ) -> bool:
        if idempotency_key is not None:
            if (order.user_id, idempotency_key) in self.store.keys:
                return False
            self.store.keys[(order.user_id, idempotency_key)] = (order.id, request_hash)
        self.store.orders[order.id] = order
        self.store.events.append(event)
        return True

    async def by_idempotency_key(self, user_id: int, key: str) -> tuple[Order, str] | None:
        found = self.store.keys.get((user_id, key))
        order = None if found is None else self.store.orders.get(found[0])
        return None if order is None or found is None else (order, found[1])

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Order | None:
        return self.store.orders.get(order_id)

    async def list_page(
        self, order_filter: OrderFilter, after: Cursor | None, limit: int
    ) -> list[Order]:
        def matches(o: Order) -> bool:
            f = order_filter
            return (
                (f.user_id is None or o.user_id == f.user_id)
                and (f.status is None or o.status is f.status)
                and (f.created_from is None or o.created_at >= f.created_from)
                and (f.created_to is None or o.created_at < f.created_to)
                and (after is None or (o.created_at, o.id) < (after.created_at, after.order_id))
            )

        found = sorted(
            filter(matches, self.store.orders.values()),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        return found[:limit]

    async def save(self, before: Order, after: Order) -> None:
        current = self.uow.staged.get(before.id) or self.store.orders.get(before.id)
        if current is None or current.version != before.version:
            raise ConcurrentUpdateError(str(before.id))
        self.uow.staged[after.id] = after

    async def pending_older_than(self, cutoff: datetime, limit: int) -> list[UUID]:
        pending = [
            o
            for o in self.store.orders.values()
            if o.status is OrderStatus.PENDING and o.created_at < cutoff
        ]
        return [o.id for o in sorted(pending, key=lambda o: o.created_at)[:limit]]

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
        order = self.store.orders.get(order_id)
        if order is None or (event_id, consumer) in self.store.inbox:
            return EventClaim(moved=False)
        if order.can_move_to(target):  # the fast path: claim, move and emit, self-committed
            self.store.inbox.add((event_id, consumer))
            self.store.orders[order_id] = order.transition(target, at=at, reason=reason)
            self.store.events.append(event)
            return EventClaim(moved=True)
        self.uow.claims.add((event_id, consumer))
        return EventClaim(moved=False, order=order)

    async def move_many(self, moves: Sequence[Move]) -> list[bool]:
        """The common case of each move, as claim_and_move makes it; the rest left."""
        done: list[bool] = []
        for move in moves:
            order = self.store.orders.get(move.order_id)
            if (
                order is None
                or (move.event_id, move.consumer) in self.store.inbox
                or not order.can_move_to(move.target)
            ):
                done.append(False)
                continue
            self.store.inbox.add((move.event_id, move.consumer))
            self.store.orders[move.order_id] = order.transition(
                move.target, at=move.at, reason=move.reason
            )
            self.store.events.append(move.event)
            done.append(True)
        return done


class FakeOutbox:
    """Events staged in the unit of work (sent on commit)."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    async def add(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        assert event.correlation_id == aggregate_id
        self.uow.staged_events.append(event)


class FakeUnitOfWork(UnitOfWork):
    """One unit of work over the store: staged changes reach it on commit() only."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.orders = FakeOrderRepository(store, self)
        self.outbox = FakeOutbox(self)
        self.staged: dict[UUID, Order] = {}
        self.staged_events: list[EventEnvelope] = []
        self.claims: set[tuple[UUID, str]] = set()
        self.committed = False
        self.rolled_back = False

    async def commit(self) -> None:
        self.store.orders.update(self.staged)
        self.store.events.extend(self.staged_events)
        self.store.inbox.update(self.claims)
        self.staged, self.staged_events, self.claims = {}, [], set()
        self.committed = True

    async def rollback(self) -> None:
        self.staged, self.staged_events, self.claims = {}, [], set()
        self.rolled_back = True


@dataclass
class FakeUoWFactory:
    """The UnitOfWorkFactory the use cases get; remembers every unit of work it made."""

    store: FakeStore = field(default_factory=FakeStore)
    made: list[FakeUnitOfWork] = field(default_factory=list)

    def __call__(self) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.store)
        self.made.append(uow)
        return uow

    @property
    def last(self) -> FakeUnitOfWork:
        return self.made[-1]


@dataclass
class FakeUsers:
    """The UserDirectory port: known users, an optional error for everyone, evictions seen."""

    known: set[int] = field(default_factory=set)
    failure: Exception | None = None
    evicted: list[int] = field(default_factory=list)
    asked: list[tuple[int, str, str | None]] = field(default_factory=list)

    async def require(self, user_id: int, *, token: str, request_id: str | None = None) -> object:
        self.asked.append((user_id, token, request_id))
        if self.failure is not None:
            raise self.failure
        if user_id not in self.known:
            raise UnknownUserError(str(user_id))
        return {"id": user_id}

    async def evict(self, user_id: int) -> None:
        self.evicted.append(user_id)


@dataclass
class FakePrices:
    """The PriceBook port: a price list, an optional error for every lookup, forgets seen."""

    prices: dict[str, Price] = field(default_factory=dict)
    failure: Exception | None = None
    forgotten: list[str] = field(default_factory=list)

    async def price_of(self, sku: str) -> Price:
        if self.failure is not None:
            raise self.failure
        if sku not in self.prices:
            raise UnknownSkuError(sku)
        return self.prices[sku]

    async def forget(self, sku: str) -> None:
        self.forgotten.append(sku)
