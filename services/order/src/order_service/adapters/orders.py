"""SqlOrderRepository: the OrderRepository port on PostgreSQL, inside a SqlAlchemyUnitOfWork.

Most methods run on the unit of work's session (its transaction). The two hot ones decide for
themselves how they run: `add` is always one self-committing statement on the driver
(INSERT_ORDER_SQL); `claim_and_move` tries MOVE_ONCE_SQL, guarded by the domain's
SOURCES_OF[target], and falls back to the session (claim the inbox and lock the order, then let
the state machine decide) when that statement does not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from shop_common.db import driver_connection
from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.outbox import OutboxRow, outbox_row
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from order_service.adapters import orders_sql as sql
from order_service.domain.listing import Cursor, OrderFilter
from order_service.domain.order import (
    SOURCES_OF,
    ConcurrentUpdateError,
    Order,
    OrderLine,
    OrderStatus,
)
from order_service.service_layer.unit_of_work import EventClaim, Move

ORDERS_EXCHANGE = "orders"

# MOVE_ONCE_SQL's $3 for each target: the states the domain lets it be reached from.
_GUARD: dict[OrderStatus, list[str]] = {
    target: sorted(source.value for source in sources) for target, sources in SOURCES_OF.items()
}


def order_outbox_row(
    event: EventEnvelope, aggregate_id: str, headers: Mapping[str, str] | None = None
) -> OutboxRow:
    """The outbox row publishing an order event on the orders exchange (headers: those given,
    else the current context's)."""
    return outbox_row(event, exchange=ORDERS_EXCHANGE, aggregate_id=aggregate_id, headers=headers)


class SqlOrderRepository:
    """Orders in PostgreSQL; `session()` is the unit of work's session (opened on first use)."""

    def __init__(self, engine: AsyncEngine, session: Callable[[], AsyncSession]) -> None:
        self._engine = engine
        self._session = session

    async def add(
        self, order: Order, *, idempotency_key: str | None, request_hash: str, event: EventEnvelope
    ) -> bool:
        """INSERT_ORDER_SQL: one round trip instead of BEGIN, the key's lookup, the inserts and
        COMMIT; False (nothing written) when this user already used the key."""
        outbox = order_outbox_row(event, str(order.id))
        try:
            async with driver_connection(self._engine) as conn:
                row = await conn.fetchrow(
                    sql.INSERT_ORDER_SQL,
                    order.id,
                    order.user_id,
                    order.status.value,
                    order.currency,
                    order.total,
                    order.version,
                    idempotency_key,
                    request_hash,
                    order.created_at,
                    order.updated_at,
                    [line.sku for line in order.lines],
                    [line.quantity for line in order.lines],
                    [line.unit_price for line in order.lines],
                    *outbox.values(),
                )
        except IntegrityError:
            if idempotency_key is None:
                raise
            return False  # a concurrent request with the same key went in first: read it
        return row is not None

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
        """The common case in one round trip (MOVE_ONCE_SQL); otherwise, in the session, the
        inbox claim with the order's lock, and the move if the state machine allows it."""
        guard = _GUARD[target]
        if guard:
            try:
                async with driver_connection(self._engine) as conn:
                    moved = await conn.fetchrow(
                        sql.MOVE_ONCE_SQL,
                        order_id,
                        target.value,
                        guard,
                        reason,
                        at,
                        event_id,
                        consumer,
                        *order_outbox_row(event, str(order_id)).values(),
                    )
                if moved is not None:
                    return EventClaim(moved=True)
            except IntegrityError:
                pass  # a concurrent delivery claimed it first: the claim below finds it taken
        # A duplicate, an order no longer waiting (compensation), or no order.
        row = (
            await self._session().execute(
                sql.CLAIM_AND_LOCK, {"event_id": event_id, "consumer": consumer, "id": order_id}
            )
        ).first()
        if row is None:
            return EventClaim(moved=False)
        order = sql.to_order(row, [])  # no lines: only the status moves
        if not order.can_move_to(target):
            return EventClaim(moved=False, order=order)
        await self.save(order, order.transition(target, at=at, reason=reason))
        await order_outbox_row(event, str(order_id)).insert(self._session())
        return EventClaim(moved=True)

    async def move_many(self, moves: Sequence[Move]) -> list[bool]:
        """MOVE_ONCE_SQL once per move, pipelined (asyncpg `fetchmany`: the statements go out
        together, one round trip) in one transaction, in order id order (two batches lock the
        orders they share in the same order). Only the first move of an order in the batch is
        tried, and only to a target with a guard; the others are left (False)."""
        tried: dict[UUID, Move] = {}
        for move in moves:
            if _GUARD[move.target] and move.order_id not in tried:
                tried[move.order_id] = move
        if not tried:
            return [False] * len(moves)
        ordered = [tried[order_id] for order_id in sorted(tried)]
        async with driver_connection(self._engine) as conn, conn.transaction():
            rows = await conn.fetchmany(sql.MOVE_ONCE_SQL, [_move_args(m) for m in ordered])
        moved = {row["id"] for row in rows}
        return [tried.get(m.order_id) is m and m.order_id in moved for m in moves]

    async def by_idempotency_key(self, user_id: int, key: str) -> tuple[Order, str] | None:
        """The order created earlier with this key by this user, with its request hash."""
        row = (
            await self._session().execute(sql.BY_IDEMPOTENCY_KEY, {"u": user_id, "k": key})
        ).first()
        if row is None:
            return None
        return sql.to_order(row, await self._lines(row.id)), row.request_hash

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Order | None:
        """The order, optionally locked for the rest of the transaction."""
        lock = " FOR UPDATE" if for_update else ""
        row = (
            await self._session().execute(
                text(f"{sql.SELECT_ORDER} WHERE id = :id{lock}"), {"id": order_id}
            )
        ).first()
        return None if row is None else sql.to_order(row, await self._lines(order_id))

    async def save(self, before: Order, after: Order) -> None:
        """Write the new status if nobody changed the row since `before` was read."""
        result = await self._session().execute(
            sql.SAVE_TRANSITION,
            {
                "status": after.status.value,
                "reason": after.failure_reason,
                "version": after.version,
                "at": after.updated_at,
                "id": after.id,
                "expected": before.version,
            },
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdateError(str(after.id))

    async def pending_older_than(self, cutoff: datetime, limit: int) -> list[UUID]:
        """Ids of PENDING orders created before cutoff (saga timeout candidates), skip locked."""
        rows = await self._session().execute(
            sql.PENDING_OLDER_THAN, {"cutoff": cutoff, "limit": limit}
        )
        return [r.id for r in rows]

    async def list_page(
        self, order_filter: OrderFilter, after: Cursor | None, limit: int
    ) -> list[Order]:
        """Up to limit orders matching the filter, newest first, strictly after the cursor."""
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        if order_filter.user_id is not None:
            where.append("user_id = :user_id")
            params["user_id"] = order_filter.user_id
        if order_filter.status is not None:
            where.append("status = :status")
            params["status"] = order_filter.status.value
        if order_filter.created_from is not None:
            where.append("created_at >= :created_from")
            params["created_from"] = order_filter.created_from
        if order_filter.created_to is not None:
            where.append("created_at < :created_to")
            params["created_to"] = order_filter.created_to
        if after is not None:
            where.append("(created_at, id) < (:after_t, :after_id)")
            params["after_t"] = after.created_at
            params["after_id"] = after.order_id
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        statement = f"{sql.SELECT_ORDER}{clause} ORDER BY created_at DESC, id DESC LIMIT :limit"
        rows = (await self._session().execute(text(statement), params)).all()
        lines = await self._lines_of([r.id for r in rows])
        return [sql.to_order(r, lines.get(r.id, [])) for r in rows]

    async def _lines(self, order_id: UUID) -> list[OrderLine]:
        rows = await self._session().execute(sql.LINES_OF_ORDER, {"id": order_id})
        return [sql.to_line(r) for r in rows]

    async def _lines_of(self, order_ids: list[UUID]) -> dict[UUID, list[OrderLine]]:
        if not order_ids:
            return {}
        rows = await self._session().execute(sql.LINES_OF_ORDERS, {"ids": order_ids})
        found: dict[UUID, list[OrderLine]] = {}
        for r in rows:
            found.setdefault(r.order_id, []).append(sql.to_line(r))
        return found


def _move_args(move: Move) -> tuple[Any, ...]:
    """MOVE_ONCE_SQL's parameters for a move."""
    return (
        move.order_id,
        move.target.value,
        _GUARD[move.target],
        move.reason,
        move.at,
        move.event_id,
        move.consumer,
        *order_outbox_row(move.event, str(move.order_id), move.headers).values(),
    )
