"""The catalog's tables behind service_layer.ports (PostgreSQL).

Over 250 lines: products and reservations share the stock table's rules (conditional
decrements, commuting increments), kept side by side; the one-statement reserve's SQL lives in
reserve_sql.py.

Reads outside a transaction run on autocommit sessions (no BEGIN/ROLLBACK round trips); the
writes join the unit of work's session. Stock never goes negative: a take is one conditional
UPDATE (`available >= :q`), and the CHECK constraint is the backstop. Restock is one UPDATE
too: increments commute, so the row lock the UPDATE takes is all the concurrency control it
needs (no read-modify-write, no version column).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shop_common.db import driver_connection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from catalog_service.adapters.reserve_sql import RESERVE_ONCE_SQL, attempt_of, reserve_args
from catalog_service.domain.errors import StockLimitError
from catalog_service.domain.listing import ProductFilter
from catalog_service.domain.product import Category, Product
from catalog_service.domain.stock import MAX_STOCK, Reservation, ReservationStatus, StockLine
from catalog_service.service_layer.ports import ReserveAttempt, ReserveRequest

# Every catalog event goes to the catalog exchange, routed by its type.
CATALOG_EXCHANGE = "catalog"

_COLUMNS = "sku, name, description, category, price, currency"
_GET = text(f"SELECT {_COLUMNS} FROM products WHERE sku = :sku")  # noqa: S608 - constants
_AVAILABLE = text("SELECT available FROM stock WHERE sku = :sku")
_RETURNING = ", ".join(f"p.{c}" for c in _COLUMNS.split(", "))
_SET_PRICE = text(
    "UPDATE products p SET price = :price, updated_at = now()"  # noqa: S608 - constants
    " FROM (SELECT sku, price FROM products WHERE sku = :sku FOR UPDATE) old"
    f" WHERE p.sku = old.sku RETURNING old.price AS old_price, {_RETURNING}"
)
_RESTOCK = text(
    "UPDATE stock SET available = available + CAST(:q AS bigint), updated_at = now()"
    " WHERE sku = :sku AND available <= CAST(:limit AS bigint) - CAST(:q AS bigint)"
    " RETURNING available"
)
_RELEASE = text(
    "UPDATE reservations SET status = 'released', released_at = :at"
    " WHERE order_id = :o AND status = ANY(CAST(:from AS text[]))"
    " AND (CAST(:by AS timestamptz) IS NULL OR expires_at <= CAST(:by AS timestamptz))"
    " RETURNING order_id"
)
_LINES = text("SELECT sku, quantity FROM reservation_lines WHERE order_id = :o ORDER BY sku")
_GIVE_BACK = text(
    "UPDATE stock SET available = available + CAST(:q AS bigint), updated_at = now()"
    " WHERE sku = :sku"
)
# On the driver (shop_common.db), on the saga's hot path: a paid order alone (confirm) or a batch
# of them (settle_batch).
_CONFIRM = (
    "UPDATE reservations SET status = 'confirmed', expires_at = NULL"
    " WHERE order_id = ANY($1::uuid[]) AND status = 'reserved' RETURNING order_id"
)
# A batch's stock rows, locked in sku order before its reservations run (settle_batch).
_LOCK_STOCK = "SELECT 1 FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE"
_RESERVATION = text(
    "SELECT order_id, status, reason, expires_at FROM reservations WHERE order_id = :o"
)
_EXPIRED = text(
    "SELECT order_id FROM reservations WHERE status = 'reserved' AND expires_at <= :now"
    " ORDER BY expires_at LIMIT :limit"
)


CENTS = Decimal("0.01")


def _product(r: Any) -> Product:
    # NUMERIC(19, 4) in the table; the catalog's prices have 2 places (domain.check_price).
    price = r.price.quantize(CENTS)
    return Product(r.sku, r.name, r.description, Category(r.category), price, r.currency)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SqlProductRepository:
    """Products and stock; `session` is the unit of work's transaction while one is open."""

    def __init__(self, reads: async_sessionmaker[AsyncSession]) -> None:
        self._reads = reads
        self.session: AsyncSession | None = None

    def _open(self) -> AsyncSession:
        if self.session is None:
            raise RuntimeError("this write needs an open unit of work")
        return self.session

    async def get(self, sku: str) -> Product | None:
        async with self._reads() as session:
            row = (await session.execute(_GET, {"sku": sku})).first()
        return None if row is None else _product(row)

    async def page(self, where: ProductFilter, after: str | None, size: int) -> list[Product]:
        clauses: list[str] = ["TRUE"]
        params: dict[str, object] = {"size": size}
        if where.text:
            clauses.append("(name ILIKE :q OR description ILIKE :q)")
            params["q"] = _like(where.text)
        if where.category:
            clauses.append("category = :c")
            params["c"] = where.category.value
        if after is not None:
            clauses.append("sku > :after")
            params["after"] = after
        sql = text(
            f"SELECT {_COLUMNS} FROM products WHERE {' AND '.join(clauses)}"  # noqa: S608 - fixed clauses
            " ORDER BY sku LIMIT :size"
        )
        async with self._reads() as session:
            rows = (await session.execute(sql, params)).all()
        return [_product(r) for r in rows]

    async def available(self, sku: str) -> int | None:
        async with self._reads() as session:
            count = (await session.execute(_AVAILABLE, {"sku": sku})).scalar()
        return None if count is None else int(count)

    async def set_price(self, sku: str, price: Decimal) -> tuple[Product, Decimal] | None:
        row = (await self._open().execute(_SET_PRICE, {"sku": sku, "price": price})).first()
        return None if row is None else (_product(row), row.old_price.quantize(CENTS))

    async def restock(self, sku: str, quantity: int) -> int | None:
        session = self._open()
        params = {"sku": sku, "q": quantity, "limit": MAX_STOCK}
        count = (await session.execute(_RESTOCK, params)).scalar()
        if count is not None:
            return int(count)
        if (await session.execute(_AVAILABLE, {"sku": sku})).scalar() is None:
            return None
        raise StockLimitError(f"stock of {sku} would exceed {MAX_STOCK}")


class SqlReservationRepository:
    """Reservations and their lines; writes join the unit of work's transaction, but for the
    one-statement `reserve`, which runs on its own pooled driver connection."""

    def __init__(self, reads: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
        self._reads = reads
        self._engine = engine
        self.session: AsyncSession | None = None

    def _open(self) -> AsyncSession:
        if self.session is None:
            raise RuntimeError("this write needs an open unit of work")
        return self.session

    async def get(self, order_id: UUID) -> Reservation | None:
        async with self._reads() as session:
            row = (await session.execute(_RESERVATION, {"o": order_id})).first()
            if row is None:
                return None
            lines = (await session.execute(_LINES, {"o": order_id})).all()
        return Reservation(
            row.order_id,
            ReservationStatus(row.status),
            tuple(StockLine(r.sku, r.quantity) for r in lines),
            row.expires_at,
            row.reason,
        )

    async def reserve(self, request: ReserveRequest) -> ReserveAttempt:
        """RESERVE_ONCE_SQL (adapters/reserve_sql.py): the claim, the check and decrement of
        every line, the record, its lines and its event in one self-committing statement."""
        async with driver_connection(self._engine) as conn:
            row = await conn.fetchrow(RESERVE_ONCE_SQL, *reserve_args(request, CATALOG_EXCHANGE))
        return attempt_of(request, row)

    async def settle_batch(
        self, requests: Sequence[ReserveRequest], confirms: Sequence[UUID]
    ) -> tuple[list[ReserveAttempt], int]:
        """One transaction: the stock rows of every sku of the batch locked first, in sku order
        (two batches, or a batch and a single reservation, never wait on each other in a
        cycle), then RESERVE_ONCE_SQL once per request, pipelined (asyncpg `fetchmany`: the
        statements go out together, one round trip), then one UPDATE for the confirmations.
        Without reservations, the confirmations are one self-committing statement."""
        if not requests:
            async with driver_connection(self._engine) as conn:
                return [], len(await conn.fetch(_CONFIRM, list(confirms)))
        skus = sorted({line.sku for request in requests for line in request.lines})
        async with driver_connection(self._engine) as conn, conn.transaction():
            await conn.execute(_LOCK_STOCK, skus)
            rows = await conn.fetchmany(
                RESERVE_ONCE_SQL, [reserve_args(r, CATALOG_EXCHANGE) for r in requests]
            )
            confirmed = await conn.fetch(_CONFIRM, list(confirms)) if confirms else []
        return [attempt_of(r, row) for r, row in zip(requests, rows, strict=True)], len(confirmed)

    async def release(
        self, order_id: UUID, at: datetime, *, expired_by: datetime | None = None
    ) -> list[StockLine] | None:
        session = self._open()
        statuses = ["reserved"] if expired_by else ["reserved", "confirmed"]
        params = {"o": order_id, "at": at, "from": statuses, "by": expired_by}
        if (await session.execute(_RELEASE, params)).first() is None:
            return None
        lines = [
            StockLine(r.sku, r.quantity) for r in await session.execute(_LINES, {"o": order_id})
        ]
        for line in lines:  # in sku order, like the takes: no lock-order deadlock
            await session.execute(_GIVE_BACK, {"sku": line.sku, "q": line.quantity})
        return lines

    async def confirm(self, order_id: UUID) -> bool:
        async with driver_connection(self._engine) as conn:
            return bool(await conn.fetch(_CONFIRM, [order_id]))

    async def expired(self, now: datetime, limit: int) -> list[UUID]:
        async with self._reads() as session:
            rows = (await session.execute(_EXPIRED, {"now": now, "limit": limit})).all()
        return [r.order_id for r in rows]
