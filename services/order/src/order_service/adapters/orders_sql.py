"""The SQL of the orders tables (PostgreSQL): the statements and the row → Order mapping.

INSERT_ORDER_SQL and MOVE_ONCE_SQL are the two statements every order runs through, written for
the driver (shop_common.db: `$n` placeholders, no SQLAlchemy execute path). The states a move may
start from are a parameter ($3), bound by adapters/orders.py from the domain's SOURCES_OF: the
state machine is not re-encoded here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shop_common.messaging.outbox import OutboxRow
from sqlalchemy import text

from order_service.domain.money import in_minor_units
from order_service.domain.order import Order, OrderLine, OrderStatus

SELECT_ORDER = (
    "SELECT id, user_id, status, currency, total, failure_reason, version, created_at, updated_at "
    "FROM orders"
)

# The inbox claim and the order's lock in one round trip. A duplicate delivery conflicts on the
# inbox key (after a concurrent first one commits): no row.
CLAIM_AND_LOCK = text(
    "WITH c AS (INSERT INTO inbox (event_id, consumer)"  # noqa: S608 - constants; values bound
    " VALUES (CAST(:event_id AS uuid), CAST(:consumer AS text))"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING event_id)"
    f" {SELECT_ORDER} WHERE id = :id AND EXISTS (SELECT 1 FROM c) FOR UPDATE"
)

# The order, then its lines numbered from 0 and its outbox row, only if the order row went in
# (one statement, autocommit, atomic by itself); no row when this user already used the key.
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

# A payment result in one statement (autocommit, atomic by itself): the status moves only from
# one of the states $3 (the domain's SOURCES_OF[target]) and only if this event was never
# handled; the inbox row and the outbox row go in with it. A duplicate that races past the
# NOT EXISTS check fails on the inbox's primary key: the statement does nothing.
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

LINES_OF_ORDER = text(
    "SELECT sku, quantity, unit_price FROM order_lines WHERE order_id = :id ORDER BY line_no"
)
LINES_OF_ORDERS = text(
    "SELECT order_id, sku, quantity, unit_price FROM order_lines"
    " WHERE order_id = ANY(:ids) ORDER BY order_id, line_no"
)
BY_IDEMPOTENCY_KEY = text(
    f"{SELECT_ORDER.replace('FROM', ', request_hash FROM')}"
    " WHERE user_id = :u AND idempotency_key = :k"
)
SAVE_TRANSITION = text(
    "UPDATE orders SET status = :status, failure_reason = :reason, version = :version,"
    " updated_at = :at WHERE id = :id AND version = :expected"
)
PENDING_OLDER_THAN = text(
    "SELECT id FROM orders WHERE status = 'PENDING' AND created_at < :cutoff"
    " ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)


def to_order(row: Any, lines: list[OrderLine]) -> Order:
    """The domain order of an orders row (amounts in the currency's minor unit)."""
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


def to_line(row: Any) -> OrderLine:
    """The domain line of an order_lines row."""
    return OrderLine(row.sku, row.quantity, Decimal(row.unit_price))
