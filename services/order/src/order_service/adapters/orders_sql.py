"""Orders in PostgreSQL: rows to domain objects and back, keyset listing, optimistic versions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shop_common.messaging.outbox import OutboxRow
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.domain.listing import Cursor, OrderFilter
from order_service.domain.money import in_minor_units
from order_service.domain.order import Order, OrderLine, OrderStatus

_SELECT = (
    "SELECT id, user_id, status, currency, total, failure_reason, version, created_at, updated_at "
    "FROM orders"
)


# A duplicate delivery conflicts on the inbox key (after a concurrent first one commits): no row.
_CLAIM_AND_LOCK = text(
    "WITH c AS (INSERT INTO inbox (event_id, consumer)"  # noqa: S608 - constants; values bound
    " VALUES (CAST(:event_id AS uuid), CAST(:consumer AS text))"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING event_id)"
    f" {_SELECT} WHERE id = :id AND EXISTS (SELECT 1 FROM c) FOR UPDATE"
)


# The two statements every order runs through, for the driver (shop_common.db: no SQLAlchemy
# execute path). MOVE_ONCE_SQL is a payment result in one statement (autocommit, atomic by
# itself): the status moves only from a state the state machine allows ($3) and only if this
# event was never handled; the inbox row and the outbox row go in with it. A duplicate that
# races past the NOT EXISTS check fails on the inbox's primary key: the statement does nothing.
# The order, then its lines numbered from 0 and its outbox row, only if the order row went in.
INSERT_ORDER_SQL = (
    "WITH o AS (INSERT INTO orders (id, user_id, status, currency, total, version,"  # noqa: S608 - constants; values bound
    " idempotency_key, request_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6,"
    " $7, $8, $9, $10) ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id),"
    " l AS (INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price)"
    " SELECT o.id, t.n - 1, t.sku, t.quantity, t.unit_price FROM o, unnest("
    "CAST($11 AS text[]), CAST($12 AS int[]), CAST($13 AS numeric[]))"
    " WITH ORDINALITY AS t(sku, quantity, unit_price, n)),"
    f" x AS ({OutboxRow.insert_from(14)} FROM o)"
    " SELECT id FROM o"
)
MOVE_ONCE_SQL = (
    "WITH u AS (UPDATE orders SET status = CAST($2 AS text),"  # noqa: S608 - constants; values bound
    " failure_reason = coalesce(CAST($4 AS text), failure_reason), version = version + 1,"
    " updated_at = CAST($5 AS timestamptz)"
    " WHERE id = CAST($1 AS uuid) AND status = ANY(CAST($3 AS text[]))"
    " AND NOT EXISTS (SELECT 1 FROM inbox WHERE event_id = CAST($6 AS uuid)"
    " AND consumer = CAST($7 AS text)) RETURNING id),"
    " c AS (INSERT INTO inbox (event_id, consumer)"
    " SELECT CAST($6 AS uuid), CAST($7 AS text) FROM u RETURNING event_id),"
    f" x AS ({OutboxRow.insert_from(8)} FROM c)"
    " SELECT id FROM u"
)


async def insert_order(
    conn: Any,
    order: Order,
    *,
    idempotency_key: str | None,
    request_hash: str | None,
    outbox: OutboxRow,
) -> bool:
    """Insert a new order, its lines and its outbox row in one statement on a
    driver connection; False, with nothing written, when this user already used the key."""
    row = await conn.fetchrow(
        INSERT_ORDER_SQL,
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
    return row is not None


async def move_once(
    conn: Any,
    order_id: UUID,
    *,
    sources: list[OrderStatus],
    target: OrderStatus,
    at: datetime,
    reason: str | None,
    event_id: UUID,
    consumer: str,
    outbox: OutboxRow,
) -> bool:
    """Move the order from one of `sources` to `target` with its inbox claim and outbox row,
    in one statement on a driver connection; False (nothing written) when it
    is in another state or the event was handled before. IntegrityError when a concurrent
    duplicate claimed the event first."""
    row = await conn.fetchrow(
        MOVE_ONCE_SQL,
        order_id,
        target.value,
        [state.value for state in sources],
        reason,
        at,
        event_id,
        consumer,
        *outbox.values(),
    )
    return row is not None


class ConcurrentUpdateError(Exception):
    """The row changed between read and write (optimistic version check failed)."""


def _to_order(row: Any, lines: list[OrderLine]) -> Order:
    currency = row.currency
    return Order(
        id=row.id,
        user_id=row.user_id,
        lines=tuple(
            OrderLine(x.sku, x.quantity, in_minor_units(x.unit_price, currency)) for x in lines
        ),
        currency=currency,
        total=in_minor_units(Decimal(row.total), currency),
        status=OrderStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        failure_reason=row.failure_reason,
        version=row.version,
    )


class OrderRepository:
    """Reads and writes orders inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim_and_lock(self, event_id: UUID, consumer: str, order_id: UUID) -> Order | None:
        """The inbox claim of event_id (shop_common.messaging.inbox) and the order's lock, in one
        round trip; None when the event was handled before or there is no such order.

        The order comes without its lines (a status change needs none): never show it.
        """
        row = (
            await self._session.execute(
                _CLAIM_AND_LOCK, {"event_id": event_id, "consumer": consumer, "id": order_id}
            )
        ).first()
        return None if row is None else _to_order(row, [])

    async def _lines(self, order_id: UUID) -> list[OrderLine]:
        rows = await self._session.execute(
            text(
                "SELECT sku, quantity, unit_price FROM order_lines WHERE order_id = :id ORDER BY line_no"
            ),
            {"id": order_id},
        )
        return [OrderLine(r.sku, r.quantity, Decimal(r.unit_price)) for r in rows]

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Order | None:
        """The order, optionally locked for the rest of the transaction."""
        lock = " FOR UPDATE" if for_update else ""
        row = (
            await self._session.execute(text(f"{_SELECT} WHERE id = :id{lock}"), {"id": order_id})
        ).first()
        return None if row is None else _to_order(row, await self._lines(order_id))

    async def by_idempotency_key(self, user_id: int, key: str) -> tuple[Order, str] | None:
        """The order created earlier with this key by this user, with its request hash."""
        row = (
            await self._session.execute(
                text(
                    f"{_SELECT.replace('FROM', ', request_hash FROM')} WHERE user_id = :u AND idempotency_key = :k"
                ),
                {"u": user_id, "k": key},
            )
        ).first()
        if row is None:
            return None
        return _to_order(row, await self._lines(row.id)), row.request_hash

    async def save_transition(self, before: Order, after: Order) -> None:
        """Write the new status if nobody changed the row since `before` was read."""
        result = await self._session.execute(
            text(
                "UPDATE orders SET status = :status, failure_reason = :reason, version = :version,"
                " updated_at = :at WHERE id = :id AND version = :expected"
            ),
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
        """Ids of PENDING orders created before cutoff (saga timeout candidates)."""
        rows = await self._session.execute(
            text(
                "SELECT id FROM orders WHERE status = 'PENDING' AND created_at < :cutoff"
                " ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"cutoff": cutoff, "limit": limit},
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
        rows = (
            await self._session.execute(
                text(f"{_SELECT}{clause} ORDER BY created_at DESC, id DESC LIMIT :limit"), params
            )
        ).all()
        lines = await self._lines_of([r.id for r in rows])
        return [_to_order(r, lines.get(r.id, [])) for r in rows]

    async def _lines_of(self, order_ids: list[UUID]) -> dict[UUID, list[OrderLine]]:
        if not order_ids:
            return {}
        rows = await self._session.execute(
            text(
                "SELECT order_id, sku, quantity, unit_price FROM order_lines"
                " WHERE order_id = ANY(:ids) ORDER BY order_id, line_no"
            ),
            {"ids": order_ids},
        )
        found: dict[UUID, list[OrderLine]] = {}
        for r in rows:
            found.setdefault(r.order_id, []).append(
                OrderLine(r.sku, r.quantity, Decimal(r.unit_price))
            )
        return found
