"""In-memory fakes of the payment service's ports, for the use-case unit tests (no infrastructure).

- FakeUnitOfWork: a FakePaymentRepository, the inbox claims, the emitted outbox events and a
  `committed` flag; the one-statement `record_once` claims, stores and emits all or nothing,
  like the SQL statement.
- FakeProvider: charges and refunds idempotently on the key, and answers with a decline or an
  outage when told to; it counts its calls.

Test modules cannot import conftest (importlib mode): they take the `world` fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from payment_service.domain.payment import Payment
from payment_service.service_layer.payments import PaymentService
from payment_service.service_layer.provider import (
    PaymentDeclinedError,
    ProviderReceipt,
    ProviderUnavailableError,
)
from payment_service.service_layer.unit_of_work import UnitOfWork
from shop_common.messaging.events import EventEnvelope


@dataclass
class Store:
    """What the fake database holds, shared by every unit of work."""

    payments: list[Payment] = field(default_factory=list)
    inbox: set[tuple[UUID, str]] = field(default_factory=set)
    outbox: list[EventEnvelope] = field(default_factory=list)
    commits: int = 0


class FakePaymentRepository:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[Payment] | None = None  # the open transaction's writes

    def _has(self, order_id: UUID, kind: str) -> bool:
        rows = [*self.store.payments, *(self.pending or [])]
        return any(p.order_id == order_id and p.kind == kind for p in rows)

    async def get(self, payment_id: UUID) -> Payment | None:
        return next((p for p in self.store.payments if p.id == payment_id), None)

    async def for_order(self, order_id: UUID) -> list[Payment]:
        return [p for p in self.store.payments if p.order_id == order_id]

    async def charged(self, order_id: UUID) -> bool:
        return self._has(order_id, "charge")

    async def record_once(
        self, payment: Payment, *, cause_id: UUID, consumer: str, event: EventEnvelope
    ) -> bool:
        if (cause_id, consumer) in self.store.inbox or self._has(payment.order_id, payment.kind):
            return False
        self.store.inbox.add((cause_id, consumer))
        self.store.payments.append(payment)
        self.store.outbox.append(event)
        return True

    async def add(self, payment: Payment) -> bool:
        assert self.pending is not None, "add() needs an open unit of work"
        if self._has(payment.order_id, payment.kind):
            return False
        self.pending.append(payment)
        return True


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: Store) -> None:
        self.store = store
        self.payments = FakePaymentRepository(store)
        self.claims: set[tuple[UUID, str]] = set()
        self.events: list[EventEnvelope] = []
        self.committed = False
        self.rolled_back = False

    async def begin(self) -> None:
        self.payments.pending = []

    async def claim(self, event_id: UUID, consumer: str) -> bool:
        key = (event_id, consumer)
        if key in self.store.inbox or key in self.claims:
            return False
        self.claims.add(key)
        return True

    async def emit(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        assert aggregate_id
        self.events.append(event)

    async def commit(self) -> None:
        self.store.payments += self.payments.pending or []
        self.store.inbox |= self.claims
        self.store.outbox += self.events
        self.store.commits += 1
        self.committed = True
        self._reset()

    async def rollback(self) -> None:
        if self.payments.pending is not None:
            self.rolled_back = True
        self._reset()

    def _reset(self) -> None:
        self.payments.pending = None
        self.claims = set()
        self.events = []


class FakeProvider:
    def __init__(self) -> None:
        self.decline_reason: str | None = None
        self.down = False
        self.charges: dict[UUID, ProviderReceipt] = {}
        self.refunds: dict[UUID, ProviderReceipt] = {}
        self.calls = 0

    def _answer(self) -> None:
        self.calls += 1
        if self.down:
            raise ProviderUnavailableError("payment provider is down")

    async def charge(
        self, *, idempotency_key: UUID, amount: Decimal, currency: str
    ) -> ProviderReceipt:
        self._answer()
        if self.decline_reason is not None:
            raise PaymentDeclinedError(self.decline_reason)
        return self.charges.setdefault(
            idempotency_key, ProviderReceipt(f"ch_{uuid4().hex}", amount, currency)
        )

    async def refund(
        self, *, idempotency_key: UUID, provider_ref: str, amount: Decimal, currency: str
    ) -> ProviderReceipt:
        self._answer()
        assert provider_ref.startswith("ch_")
        return self.refunds.setdefault(
            idempotency_key, ProviderReceipt(f"re_{uuid4().hex}", amount, currency)
        )


@dataclass
class World:
    """The service over fakes, and the fakes to look into."""

    store: Store
    provider: FakeProvider
    service: PaymentService
    units: list[FakeUnitOfWork]

    def uow(self) -> FakeUnitOfWork:
        unit = FakeUnitOfWork(self.store)
        self.units.append(unit)
        return unit


@pytest.fixture
def world() -> World:
    store, provider, units = Store(), FakeProvider(), []
    world = World(store, provider, PaymentService(lambda: world.uow(), provider), units)
    return world
