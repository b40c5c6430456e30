"""Order use cases; each runs in one transaction with its outbox rows (and inbox claim)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from pydantic import BaseModel
from shop_common.db import driver_connection
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    OrderStatusChanged,
    new_event,
)
from shop_common.messaging.outbox import autocommit_sessions, outbox_row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from order_service.adapters.repository import (
    ConcurrentUpdateError,
    OrderRepository,
    insert_order,
    move_once,
)
from order_service.domain.listing import Cursor, OrderFilter
from order_service.domain.order import (
    EVENT_OF_STATUS,
    TRANSITIONS,
    Order,
    OrderLine,
    OrderStatus,
    order_total,
)

ORDERS_EXCHANGE = "orders"
INBOX_CONSUMER = "order.payment-results"
SAGA_TIMEOUT_REASON = "payment timed out"


class IdempotencyConflictError(Exception):
    """The Idempotency-Key was used before with a different request body."""


class OrderNotFoundError(Exception):
    """No such order visible to the caller."""


def request_hash(lines: list[OrderLine], currency: str) -> str:
    """Stable hash of a create request (same key + same body → same order)."""
    body = {"currency": currency, "items": [[x.sku, x.quantity, str(x.unit_price)] for x in lines]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def _emit(
    session: AsyncSession,
    event_type: str,
    payload: BaseModel,
    order_id: UUID,
    causation: EventEnvelope | None = None,
) -> None:
    envelope = new_event(
        event_type,
        payload,
        correlation_id=str(order_id),
        causation_id=str(causation.event_id) if causation else None,
    )
    await outbox_row(envelope, exchange=ORDERS_EXCHANGE, aggregate_id=str(order_id)).insert(session)


async def _emit_status(
    session: AsyncSession, order: Order, causation: EventEnvelope | None = None
) -> None:
    event_type = EVENT_OF_STATUS[order.status]
    if event_type == "order.cancelled":
        payload: BaseModel = OrderCancelled(
            order_id=order.id, user_id=order.user_id, refund_required=order.refund_required
        )
    else:
        payload = OrderStatusChanged(order_id=order.id, status=order.status.value)
    await _emit(session, event_type, payload, order.id, causation)


class OrderService:
    """Application service of the order aggregate."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._single = autocommit_sessions(sessions)
        bind = sessions.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            raise TypeError("OrderService needs sessions bound to an AsyncEngine")
        # The hot statements (create, payment result) go straight to its driver: shop_common.db.
        self._engine = bind

    async def create(
        self,
        user_id: int,
        lines: list[OrderLine],
        currency: str,
        idempotency_key: str | None = None,
    ) -> tuple[Order, bool]:
        """Create the order (or return the one made with this key); True when newly created."""
        total = order_total(lines, currency)
        digest = request_hash(lines, currency)
        try:
            return await self._create_once(user_id, lines, currency, total, digest, idempotency_key)
        except IntegrityError:
            if idempotency_key is None:
                raise
            # A concurrent request with the same key committed first: answer with its order.
            return await self._create_once(user_id, lines, currency, total, digest, idempotency_key)

    async def _create_once(
        self,
        user_id: int,
        lines: list[OrderLine],
        currency: str,
        total: Decimal,
        digest: str,
        idempotency_key: str | None,
    ) -> tuple[Order, bool]:
        now = datetime.now(UTC)
        order = Order(
            uuid4(), user_id, tuple(lines), currency, total, OrderStatus.PENDING, now, now
        )
        items = [OrderItem(sku=x.sku, quantity=x.quantity, unit_price=x.unit_price) for x in lines]
        payload = OrderCreated(
            order_id=order.id, user_id=user_id, items=items, total=total, currency=currency
        )
        envelope = new_event("order.created", payload, correlation_id=str(order.id))
        outbox = outbox_row(envelope, exchange=ORDERS_EXCHANGE, aggregate_id=str(order.id))
        # One statement writes the order, its lines and its outbox row (atomic by itself): one
        # round trip instead of BEGIN, the key's lookup, the inserts and COMMIT.
        async with driver_connection(self._engine) as conn:
            if await insert_order(
                conn, order, idempotency_key=idempotency_key, request_hash=digest, outbox=outbox
            ):
                return order, True
        assert idempotency_key is not None  # only the key's unique constraint conflicts
        async with self._single() as session:
            earlier = await OrderRepository(session).by_idempotency_key(user_id, idempotency_key)
        if earlier is None:  # orders are never deleted: only a concurrent change
            raise ConcurrentUpdateError(idempotency_key)
        if earlier[1] != digest:
            raise IdempotencyConflictError(idempotency_key)
        return earlier[0], False

    async def get(self, order_id: UUID, *, user_id: int, is_admin: bool) -> Order:
        """The order if the caller owns it or is admin; otherwise not found (no existence leak)."""
        async with self._sessions() as session:
            order = await OrderRepository(session).get(order_id)
        if order is None or (order.user_id != user_id and not is_admin):
            raise OrderNotFoundError(str(order_id))
        return order

    async def list_page(
        self, order_filter: OrderFilter, after: Cursor | None, limit: int
    ) -> tuple[list[Order], Cursor | None]:
        """One page, newest first, and the cursor of the next page (None at the end)."""
        async with self._sessions() as session:
            orders = await OrderRepository(session).list_page(order_filter, after, limit + 1)
        if len(orders) <= limit:
            return orders, None
        last = orders[limit - 1]
        return orders[:limit], Cursor(last.created_at, last.id)

    async def cancel(self, order_id: UUID, *, user_id: int, is_admin: bool) -> Order:
        """Cancel; a paid order goes to CANCELLED_REFUND_PENDING and the payment service refunds."""
        async with self._sessions.begin() as session:
            repo = OrderRepository(session)
            order = await repo.get(order_id, for_update=True)
            if order is None or (order.user_id != user_id and not is_admin):
                raise OrderNotFoundError(str(order_id))
            cancelled = order.cancel(at=datetime.now(UTC))
            await repo.save_transition(order, cancelled)
            await _emit_status(session, cancelled)
        return cancelled

    async def apply_payment_result(
        self,
        envelope: EventEnvelope,
        order_id: UUID,
        target: OrderStatus,
        reason: str | None = None,
    ) -> bool:
        """Apply payment.* once (inbox); False when a duplicate or no longer applicable."""
        if await self._move_directly(envelope, order_id, target, reason):
            return True
        # The general path: a duplicate, an order no longer waiting (compensation), or no order.
        async with self._sessions.begin() as session:
            repo = OrderRepository(session)
            # The inbox claim and the lock in one round trip; no lines (only the status moves).
            order = await repo.claim_and_lock(envelope.event_id, INBOX_CONSUMER, order_id)
            if order is None:
                return False
            if target not in _allowed(order.status):
                if target is OrderStatus.PAID and order.status in _NO_LONGER_CHARGEABLE:
                    # Saga compensation for a charge that landed after the order stopped waiting
                    # (timed out or cancelled while PENDING): ask the payment service to refund.
                    refund = OrderCancelled(
                        order_id=order.id, user_id=order.user_id, refund_required=True
                    )
                    await _emit(session, "order.cancelled", refund, order.id, envelope)
                    return True
                return False
            moved = order.transition(target, at=datetime.now(UTC), reason=reason)
            await repo.save_transition(order, moved)
            await _emit_status(session, moved, envelope)
        return True

    async def _move_directly(
        self, envelope: EventEnvelope, order_id: UUID, target: OrderStatus, reason: str | None
    ) -> bool:
        """The common case in one round trip (no BEGIN, lock, update, insert, COMMIT): the order
        is in a state that allows `target` and the event is new. False when it does not apply;
        the general path then decides (duplicate, compensation or nothing)."""
        sources = _SOURCES_OF.get(target)
        if not sources or EVENT_OF_STATUS.get(target) in (None, "order.cancelled"):
            return False
        moved_event = new_event(
            EVENT_OF_STATUS[target],
            OrderStatusChanged(order_id=order_id, status=target.value),
            correlation_id=str(order_id),
            causation_id=str(envelope.event_id),
        )
        outbox = outbox_row(moved_event, exchange=ORDERS_EXCHANGE, aggregate_id=str(order_id))
        try:
            async with driver_connection(self._engine) as conn:
                return await move_once(
                    conn,
                    order_id,
                    sources=sources,
                    target=target,
                    at=datetime.now(UTC),
                    reason=reason,
                    event_id=envelope.event_id,
                    consumer=INBOX_CONSUMER,
                    outbox=outbox,
                )
        except IntegrityError:
            return False  # a concurrent delivery of the same event claimed it first

    async def expire_pending(self, older_than: timedelta, *, limit: int = 100) -> int:
        """Saga timeout: fail PENDING orders with no payment result and ask for compensation."""
        cutoff = datetime.now(UTC) - older_than
        async with self._sessions.begin() as session:
            repo = OrderRepository(session)
            ids = await repo.pending_older_than(cutoff, limit)
            for order_id in ids:
                order = await repo.get(order_id)
                if order is None:
                    continue
                failed = order.transition(
                    OrderStatus.PAYMENT_FAILED, at=datetime.now(UTC), reason=SAGA_TIMEOUT_REASON
                )
                await repo.save_transition(order, failed)
                await _emit_status(session, failed)
                # Compensation: a charge that lands after the timeout must be refunded.
                await _emit(
                    session,
                    "order.cancelled",
                    OrderCancelled(order_id=order.id, user_id=order.user_id, refund_required=True),
                    order.id,
                )
        return len(ids)


# A charge reported for an order in one of these states must be given back.
_NO_LONGER_CHARGEABLE = frozenset({OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED})


# The states each target may be reached from (the inverse of TRANSITIONS).
_SOURCES_OF: dict[OrderStatus, list[OrderStatus]] = {
    target: [source for source, targets in TRANSITIONS.items() if target in targets]
    for target in OrderStatus
}


def _allowed(status: OrderStatus) -> frozenset[OrderStatus]:
    return TRANSITIONS[status]
