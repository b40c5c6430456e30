"""The payments table behind service_layer.unit_of_work.PaymentRepository (PostgreSQL).

`record_once` is the charge path's one-statement fast path: inbox claim, payment row and outbox
row in one data-modifying CTE, sent straight to the driver (shop_common.db.driver_connection) and
committing by itself. `charged` is its one-statement pre-check. Reads go through autocommit
sessions (no BEGIN/ROLLBACK round trips); `add` writes in the unit of work's transaction.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shop_common.db import driver_connection
from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.outbox import OutboxRow, outbox_row
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payment_service.domain.payment import Payment, PaymentKind, PaymentStatus

# Every payment event goes to the payments exchange, keyed by its order.
PAYMENTS_EXCHANGE = "payments"

_COLUMNS = "id, order_id, user_id, kind, status, amount, currency, provider_ref, reason"
_INSERT = text(
    f"INSERT INTO payments ({_COLUMNS})"  # noqa: S608 - constants; values bound
    " VALUES (:id, :order_id, :user_id, :kind, :status, :amount, :currency, :ref, :reason)"
    " ON CONFLICT (order_id, kind) DO NOTHING RETURNING id"
)
# Inbox claim, payment row and outbox row in one statement, for the driver (shop_common.db):
# the charge path runs it for every order. A duplicate delivery conflicts on the inbox (waiting
# for a concurrent first one to commit), a second charge of the order on UNIQUE (order_id, kind).
_RECORD = (
    "WITH c AS (INSERT INTO inbox (event_id, consumer)"  # noqa: S608 - constants; values bound
    " VALUES (CAST($1 AS uuid), CAST($2 AS text))"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING event_id),"
    f" p AS (INSERT INTO payments ({_COLUMNS})"
    " SELECT CAST($3 AS uuid), CAST($4 AS uuid), CAST($5 AS bigint),"
    " CAST($6 AS text), CAST($7 AS text), CAST($8 AS numeric),"
    " CAST($9 AS text), CAST($10 AS text), CAST($11 AS text) FROM c"
    " ON CONFLICT (order_id, kind) DO NOTHING RETURNING id),"
    f" x AS ({OutboxRow.insert_from(12)} FROM p)"
    " SELECT id FROM p"
)
_CHARGED = (
    "SELECT EXISTS (SELECT 1 FROM payments"  # noqa: S608 - constants; values bound
    f" WHERE order_id = $1 AND kind = '{PaymentKind.CHARGE.value}')"
)
_SELECT = f"SELECT {_COLUMNS}, created_at FROM payments"  # noqa: S608 - constants
_BY_ID = text(f"{_SELECT} WHERE id = :id")
_BY_ORDER = text(f"{_SELECT} WHERE order_id = :o ORDER BY created_at")


def _payment(r: Any) -> Payment:
    return Payment(
        r.id,
        r.order_id,
        PaymentKind(r.kind),
        PaymentStatus(r.status),
        r.amount,
        r.currency,
        r.provider_ref,
        r.reason,
        r.user_id,
        r.created_at,
    )


def outbox_row_of(event: EventEnvelope, aggregate_id: str) -> OutboxRow:
    """The outbox row of a payment event."""
    return outbox_row(event, exchange=PAYMENTS_EXCHANGE, aggregate_id=aggregate_id)


class SqlPaymentRepository:
    """Payments on the engine; `session` is the unit of work's transaction while one is open."""

    def __init__(self, engine: AsyncEngine, reads: async_sessionmaker[AsyncSession]) -> None:
        self._engine = engine
        self._reads = reads
        self.session: AsyncSession | None = None

    async def get(self, payment_id: UUID) -> Payment | None:
        """One payment by id."""
        if self.session is not None:
            row = (await self.session.execute(_BY_ID, {"id": payment_id})).first()
        else:
            async with self._reads() as session:
                row = (await session.execute(_BY_ID, {"id": payment_id})).first()
        return None if row is None else _payment(row)

    async def for_order(self, order_id: UUID) -> list[Payment]:
        """The payments of one order, oldest first."""
        if self.session is not None:
            return [_payment(r) for r in await self.session.execute(_BY_ORDER, {"o": order_id})]
        async with self._reads() as session:
            return [_payment(r) for r in await session.execute(_BY_ORDER, {"o": order_id})]

    async def charged(self, order_id: UUID) -> bool:
        """The order has a charge (one statement on the driver)."""
        async with driver_connection(self._engine) as conn:
            return bool(await conn.fetchval(_CHARGED, order_id))

    async def record_once(
        self, payment: Payment, *, cause_id: UUID, consumer: str, event: EventEnvelope
    ) -> bool:
        """Inbox claim, payment row and outbox row in one statement; False for a duplicate.

        The data-modifying CTE is atomic by itself (autocommit: no BEGIN/COMMIT round trips).
        """
        async with driver_connection(self._engine) as conn:
            row = await conn.fetchrow(
                _RECORD,
                cause_id,
                consumer,
                payment.id,
                payment.order_id,
                payment.user_id,
                payment.kind.value,
                payment.status.value,
                payment.amount,
                payment.currency,
                payment.provider_ref,
                payment.reason,
                *outbox_row_of(event, str(payment.order_id)).values(),
            )
        return row is not None

    async def add(self, payment: Payment) -> bool:
        """Insert in the open transaction; False when the order has a payment of that kind."""
        if self.session is None:
            raise RuntimeError("add() needs an open unit of work")
        inserted = await self.session.execute(
            _INSERT,
            {
                "id": payment.id,
                "order_id": payment.order_id,
                "user_id": payment.user_id,
                "kind": payment.kind.value,
                "status": payment.status.value,
                "amount": payment.amount,
                "currency": payment.currency,
                "ref": payment.provider_ref,
                "reason": payment.reason,
            },
        )
        return inserted.first() is not None
