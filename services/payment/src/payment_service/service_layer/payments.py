"""Charge once per order, refund on cancellation; inbox + unique (order_id, kind) + own outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from pydantic import BaseModel
from shop_common.db import driver_connection
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCancelled,
    OrderCreated,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    new_event,
)
from shop_common.messaging.inbox import claim_once
from shop_common.messaging.outbox import OutboxRow, autocommit_sessions, outbox_row
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payment_service.provider.simulated import PaymentDeclinedError, PaymentProvider

PAYMENTS_EXCHANGE = "payments"
INBOX_CONSUMER = "payment.order-events"


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A stored charge or refund."""

    id: UUID
    order_id: UUID
    kind: str
    status: str
    amount: Decimal
    currency: str
    provider_ref: str | None
    reason: str | None
    user_id: int | None
    created_at: datetime


_INSERT = text(
    "INSERT INTO payments"
    " (id, order_id, user_id, kind, status, amount, currency, provider_ref, reason)"
    " VALUES (:id, :order_id, :user_id, :kind, :status, :amount, :currency, :ref, :reason)"
    " ON CONFLICT (order_id, kind) DO NOTHING RETURNING id"
)
# Inbox claim, payment row and outbox row in one statement, for the driver (shop_common.db):
# the charge path runs it for every order.
_RECORD = (
    "WITH c AS (INSERT INTO inbox (event_id, consumer)"  # noqa: S608 - constants; values bound
    " VALUES (CAST($1 AS uuid), CAST($2 AS text))"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING event_id),"
    " p AS (INSERT INTO payments"
    " (id, order_id, user_id, kind, status, amount, currency, provider_ref, reason)"
    " SELECT CAST($3 AS uuid), CAST($4 AS uuid), CAST($5 AS bigint),"
    " CAST($6 AS text), CAST($7 AS text), CAST($8 AS numeric),"
    " CAST($9 AS text), CAST($10 AS text), CAST($11 AS text) FROM c"
    " ON CONFLICT (order_id, kind) DO NOTHING RETURNING id),"
    f" x AS ({OutboxRow.insert_from(12)} FROM p)"
    " SELECT id FROM p"
)
_CHARGED = "SELECT EXISTS (SELECT 1 FROM payments WHERE order_id = $1 AND kind = 'charge')"
_SELECT = (
    "SELECT id, order_id, user_id, kind, status, amount, currency, provider_ref, reason, created_at"
    " FROM payments"
)


def _row(r: object) -> PaymentRow:
    return PaymentRow(**{k: getattr(r, k) for k in PaymentRow.__slots__})


class PaymentService:
    """Handles order events; every effect commits with its inbox claim and outbox row."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._reads = autocommit_sessions(sessions)  # single reads: no BEGIN/ROLLBACK
        bind = sessions.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            raise TypeError("PaymentService needs sessions bound to an AsyncEngine")
        # The charge path's two statements go straight to its driver: shop_common.db.
        self._engine = bind

    async def _emit(
        self,
        session: AsyncSession,
        event_type: str,
        payload: BaseModel,
        order_id: UUID,
        cause: EventEnvelope,
    ) -> None:
        envelope = new_event(
            event_type,
            payload,
            correlation_id=cause.correlation_id,
            causation_id=str(cause.event_id),
        )
        await outbox_row(envelope, exchange=PAYMENTS_EXCHANGE, aggregate_id=str(order_id)).insert(
            session
        )

    async def _existing(
        self, session: AsyncSession, order_id: UUID, kind: str
    ) -> PaymentRow | None:
        row = (
            await session.execute(
                text(f"{_SELECT} WHERE order_id = :o AND kind = :k"), {"o": order_id, "k": kind}
            )
        ).first()
        return None if row is None else _row(row)

    async def handle_order_created(self, envelope: EventEnvelope, event: OrderCreated) -> bool:
        """Charge the order once. ProviderUnavailableError propagates (→ retry tier)."""
        async with driver_connection(self._engine) as conn:
            if await conn.fetchval(_CHARGED, event.order_id):
                return False
        # The provider call happens outside the transaction; its idempotency key is the order id,
        # so a crash after charging and before commit never charges twice.
        status, ref, reason = "succeeded", None, None
        try:
            receipt = await self._provider.charge(
                idempotency_key=event.order_id, amount=event.total, currency=event.currency
            )
            ref = receipt.provider_ref
        except PaymentDeclinedError as exc:
            status, reason = "declined", exc.reason
        payment_id = uuid4()
        result: BaseModel
        if status == "succeeded":
            result = PaymentSucceeded(
                payment_id=payment_id,
                order_id=event.order_id,
                amount=event.total,
                currency=event.currency,
            )
        else:
            result = PaymentFailed(order_id=event.order_id, reason=reason or "declined")
        values = {
            "id": payment_id,
            "order_id": event.order_id,
            "user_id": event.user_id,
            "kind": "charge",
            "status": status,
            "amount": event.total,
            "currency": event.currency,
            "ref": ref,
            "reason": reason,
        }
        event_type = "payment.succeeded" if status == "succeeded" else "payment.failed"
        return await self._record(envelope, values, event_type, result, event.order_id)

    async def _record(
        self,
        cause: EventEnvelope,
        values: dict[str, object],
        event_type: str,
        payload: BaseModel,
        order_id: UUID,
    ) -> bool:
        """Inbox claim, payment row and outbox row in one statement; False for a duplicate.

        The data-modifying CTE is atomic by itself (autocommit: no BEGIN/COMMIT round trips);
        a duplicate delivery conflicts on the inbox (waiting for a concurrent first one to
        commit), a second charge of the order on UNIQUE (order_id, kind): nothing is written.
        """
        envelope = new_event(
            event_type,
            payload,
            correlation_id=cause.correlation_id,
            causation_id=str(cause.event_id),
        )
        async with driver_connection(self._engine) as conn:
            row = await conn.fetchrow(
                _RECORD,
                cause.event_id,
                INBOX_CONSUMER,
                values["id"],
                values["order_id"],
                values["user_id"],
                values["kind"],
                values["status"],
                values["amount"],
                values["currency"],
                values["ref"],
                values["reason"],
                *outbox_row(
                    envelope, exchange=PAYMENTS_EXCHANGE, aggregate_id=str(order_id)
                ).values(),
            )
        return row is not None

    async def handle_order_cancelled(self, envelope: EventEnvelope, event: OrderCancelled) -> bool:
        """Refund a succeeded charge once; nothing to do when there is none."""
        if not event.refund_required:
            return False
        async with self._reads() as session:
            charge = await self._existing(session, event.order_id, "charge")
            if charge is None or charge.status != "succeeded":
                return False
            if await self._existing(session, event.order_id, "refund") is not None:
                return False
        receipt = await self._provider.refund(
            idempotency_key=charge.id,
            provider_ref=charge.provider_ref or "",
            amount=charge.amount,
            currency=charge.currency,
        )
        async with self._sessions.begin() as session:
            if not await claim_once(session, envelope.event_id, INBOX_CONSUMER):
                return False
            refund_id = uuid4()
            inserted = (
                await session.execute(
                    _INSERT,
                    {
                        "id": refund_id,
                        "order_id": event.order_id,
                        "user_id": charge.user_id,
                        "kind": "refund",
                        "status": "succeeded",
                        "amount": charge.amount,
                        "currency": charge.currency,
                        "ref": receipt.provider_ref,
                        "reason": None,
                    },
                )
            ).first()
            if inserted is None:
                return False
            await self._emit(
                session,
                "payment.refunded",
                PaymentRefunded(
                    payment_id=refund_id,
                    order_id=event.order_id,
                    amount=charge.amount,
                    currency=charge.currency,
                ),
                event.order_id,
                envelope,
            )
        return True

    async def get(self, payment_id: UUID) -> PaymentRow | None:
        """One payment by id."""
        async with self._reads() as session:
            row = (
                await session.execute(text(f"{_SELECT} WHERE id = :id"), {"id": payment_id})
            ).first()
        return None if row is None else _row(row)

    async def for_order(self, order_id: UUID) -> list[PaymentRow]:
        """The charge and refund of one order."""
        async with self._reads() as session:
            rows = await session.execute(
                text(f"{_SELECT} WHERE order_id = :o ORDER BY created_at"), {"o": order_id}
            )
            return [_row(r) for r in rows]
