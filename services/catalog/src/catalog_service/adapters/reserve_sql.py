"""RESERVE_ONCE_SQL: a whole reservation in ONE statement (autocommit, atomic by itself).

It replaces the general path of five or more round trips (BEGIN, the inbox claim, an INSERT of
the reservation, one conditional UPDATE per line, the lines, the outbox row, COMMIT), which held
the order pipeline to 0.53 of its old orders/s; bench/bench_orders.py measures it (docs/patterns.md).

In order, each part running only if the one before it went through:
- c: the inbox claim of the incoming event ($5, $6; a NULL event id: no claim, as for a direct
  call): a redelivery claims nothing, so nothing else happens;
- s: the stock rows of the wanted lines ($2 skus, $3 quantities), locked in sku order (no
  lock-order deadlock between two reservations); under READ COMMITTED a row another reservation
  changed is re-read at its newest version once that one commits;
- v: whether every line is there and has enough (`available >= quantity`), and the first sku
  that is short or unknown;
- r: the reservation record, RESERVED (expiring at $4) or REJECTED with its reason, unless the
  order has one already (then nothing more happens: the earlier answer stands);
- t: the decrements, only for a RESERVED record, each still guarded by `available >= quantity`
  (and the CHECK constraint as the backstop), so stock never goes negative;
- l: the reservation's lines;
- x / y: the outbox row of stock.reserved ($7..$12) or of stock.rejected ($13..$18, its
  payload's reason and sku filled in here).
The result: whether the claim went in, the record's status (NULL: the order had one already)
and the short sku. `reserve_args` binds a ReserveRequest to $1..$18 and `attempt_of` reads the
result row.
"""

from __future__ import annotations

from typing import Any

from shop_common.messaging.outbox import OutboxRow, outbox_row

from catalog_service.domain.stock import ReservationStatus
from catalog_service.service_layer.ports import ReserveAttempt, ReserveRequest

_REJECTED_ENVELOPE = (
    "jsonb_set(jsonb_set(CAST($17 AS jsonb), '{payload,reason}',"
    " to_jsonb('not enough stock of ' || v.short)), '{payload,sku}', to_jsonb(v.short))"
)

RESERVE_ONCE_SQL = (
    "WITH c AS (INSERT INTO inbox (event_id, consumer)"  # noqa: S608 - constants; values bound
    " SELECT CAST($5 AS uuid), CAST($6 AS text) WHERE CAST($5 AS uuid) IS NOT NULL"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING event_id),"
    " go AS (SELECT 1 WHERE CAST($5 AS uuid) IS NULL OR EXISTS (SELECT 1 FROM c)),"
    " w AS (SELECT t.sku, t.q FROM unnest(CAST($2 AS text[]), CAST($3 AS int[])) AS t(sku, q)),"
    " s AS (SELECT st.sku, st.available, w.q FROM stock st JOIN w ON st.sku = w.sku"
    " WHERE EXISTS (SELECT 1 FROM go) ORDER BY st.sku FOR UPDATE OF st),"
    " v AS (SELECT (SELECT count(*) FROM s WHERE s.available >= s.q)"
    " = cardinality(CAST($2 AS text[])) AS ok, (SELECT min(w.sku) FROM w LEFT JOIN s ON"
    " s.sku = w.sku"
    " WHERE s.sku IS NULL OR s.available < s.q) AS short),"
    " r AS (INSERT INTO reservations (order_id, status, expires_at, reason)"
    " SELECT CAST($1 AS uuid), CASE WHEN v.ok THEN 'reserved' ELSE 'rejected' END,"
    " CASE WHEN v.ok THEN CAST($4 AS timestamptz) END,"
    " CASE WHEN v.ok THEN NULL ELSE 'not enough stock of ' || v.short END"
    " FROM v WHERE EXISTS (SELECT 1 FROM go)"
    " ON CONFLICT (order_id) DO NOTHING RETURNING status),"
    " t AS (UPDATE stock st SET available = st.available - s.q, updated_at = now()"
    " FROM s, r WHERE r.status = 'reserved' AND st.sku = s.sku AND st.available >= s.q"
    " RETURNING st.sku),"
    " l AS (INSERT INTO reservation_lines (order_id, sku, quantity)"
    " SELECT CAST($1 AS uuid), s.sku, s.q FROM s, r WHERE r.status = 'reserved'),"
    f" x AS ({OutboxRow.insert_from(7)} FROM r"
    " WHERE r.status = 'reserved' AND CAST($7 AS uuid) IS NOT NULL),"
    " y AS (INSERT INTO outbox (event_id, exchange, routing_key, aggregate_id, envelope, headers)"
    " SELECT CAST($13 AS uuid), CAST($14 AS text), CAST($15 AS text), CAST($16 AS text),"
    f" {_REJECTED_ENVELOPE}, CAST($18 AS jsonb)"
    " FROM r, v WHERE r.status = 'rejected' AND CAST($13 AS uuid) IS NOT NULL)"
    " SELECT EXISTS (SELECT 1 FROM c) AS claimed, (SELECT status FROM r) AS status,"
    " (SELECT short FROM v) AS short"
)


def reserve_args(request: ReserveRequest, exchange: str) -> tuple[Any, ...]:
    """RESERVE_ONCE_SQL's parameters for a request ($7..$12 and $13..$18: the two outbox rows,
    NULL when there is no event; headers: the request's, else the current context's)."""
    aggregate = str(request.order_id)
    rows = [
        outbox_row(e, exchange=exchange, aggregate_id=aggregate, headers=request.headers).values()
        if e is not None
        else (None,) * 6
        for e in (request.reserved, request.rejected)
    ]
    claim = request.claim
    return (
        request.order_id,
        [x.sku for x in request.lines],
        [x.quantity for x in request.lines],
        request.expires_at,
        claim.event_id if claim else None,
        claim.consumer if claim else None,
        *rows[0],
        *rows[1],
    )


def attempt_of(request: ReserveRequest, row: Any) -> ReserveAttempt:
    """What the statement did, from its one result row."""
    status = None if row["status"] is None else ReservationStatus(row["status"])
    claimed = request.claim is None or bool(row["claimed"])
    short = row["short"] if status is ReservationStatus.REJECTED else None
    return ReserveAttempt(claimed, status, short)
