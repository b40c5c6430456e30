"""Transactional outbox: the event row commits with the business change; a relay publishes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shop_common.messaging.context import context_headers
from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.relay import OUTBOX_CHANNEL, OutboxRelay

OUTBOX_DDL: list[str] = [
    """CREATE TABLE outbox (
  id BIGSERIAL PRIMARY KEY,
  event_id UUID NOT NULL UNIQUE,
  exchange TEXT NOT NULL,
  routing_key TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  envelope JSONB NOT NULL,
  headers JSONB NOT NULL DEFAULT '{}'::jsonb,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  sent_at TIMESTAMPTZ,
  attempts INT NOT NULL DEFAULT 0,
  last_error TEXT
)""",
    "CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL",
    "CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL",
    """CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_notify('outbox', ''); RETURN NULL; END $$""",
    "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT "
    "EXECUTE FUNCTION outbox_notify()",
]

_INSERT = text(
    "INSERT INTO outbox (event_id, exchange, routing_key, aggregate_id, envelope, headers) "
    "VALUES (:event_id, :exchange, :routing_key, :aggregate_id, :envelope, :headers)"
).bindparams(bindparam("envelope", type_=JSONB), bindparam("headers", type_=JSONB))


# The outbox row as the last part of a data-modifying CTE: `x AS (OUTBOX_INSERT_FROM + " FROM o")`
# inserts it only when `o` (the business rows) returned a row. With outbox_params() as parameters
# (bind "envelope" and "headers" as JSONB), the whole statement commits atomically on its own.
OUTBOX_INSERT_FROM = (
    "INSERT INTO outbox (event_id, exchange, routing_key, aggregate_id, envelope, headers) "
    "SELECT CAST(:event_id AS uuid), CAST(:exchange AS text), CAST(:routing_key AS text), "
    "CAST(:aggregate_id AS text), CAST(:envelope AS jsonb), CAST(:headers AS jsonb)"
)


def outbox_params(
    envelope: EventEnvelope,
    *,
    exchange: str,
    aggregate_id: str,
    routing_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The parameters of an outbox row (trace context headers included)."""
    return {
        "event_id": envelope.event_id,
        "exchange": exchange,
        "routing_key": routing_key or envelope.event_type,
        "aggregate_id": aggregate_id,
        "envelope": envelope.model_dump(mode="json"),
        "headers": {**context_headers(), **(headers or {})},
    }


def outbox_insert_from(first: int) -> str:
    """OUTBOX_INSERT_FROM for a driver statement (shop_common.db): `$first` .. `$first+5` are
    outbox_values(), in that order. Use as `x AS (outbox_insert_from(n) + " FROM o")`."""
    n = [f"${first + i}" for i in range(6)]
    return (
        "INSERT INTO outbox (event_id, exchange, routing_key, aggregate_id, envelope, headers) "
        f"SELECT CAST({n[0]} AS uuid), CAST({n[1]} AS text), CAST({n[2]} AS text), "
        f"CAST({n[3]} AS text), CAST({n[4]} AS jsonb), CAST({n[5]} AS jsonb)"
    )


def outbox_values(
    envelope: EventEnvelope,
    *,
    exchange: str,
    aggregate_id: str,
    routing_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Any, ...]:
    """The outbox row's values for outbox_insert_from(): JSON as text, as the driver takes it."""
    return (
        envelope.event_id,
        exchange,
        routing_key or envelope.event_type,
        aggregate_id,
        envelope.model_dump_json(),
        json.dumps({**context_headers(), **(headers or {})}),
    )


def autocommit_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same pool without a transaction, for single statements.

    A statement in a transaction costs BEGIN and COMMIT (or ROLLBACK) round trips besides its
    own; one statement (a read, or a CTE with its outbox row) is atomic by itself.
    """
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        return sessions
    return async_sessionmaker(
        bind.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


async def add_to_outbox(
    session: AsyncSession | AsyncConnection,
    envelope: EventEnvelope,
    *,
    exchange: str,
    aggregate_id: str,
    routing_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Insert the event into the outbox in the caller's transaction (commit is the caller's)."""
    await session.execute(
        _INSERT,
        outbox_params(
            envelope,
            exchange=exchange,
            aggregate_id=aggregate_id,
            routing_key=routing_key,
            headers=headers,
        ),
    )


__all__ = (
    "OUTBOX_CHANNEL",
    "OUTBOX_DDL",
    "OUTBOX_INSERT_FROM",
    "OutboxRelay",
    "add_to_outbox",
    "autocommit_sessions",
    "outbox_insert_from",
    "outbox_params",
    "outbox_values",
)
