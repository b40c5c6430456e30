"""Transactional outbox: the event row commits with the business change; a relay publishes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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

_COLUMNS = "event_id, exchange, routing_key, aggregate_id, envelope, headers"
_INSERT = text(
    f"INSERT INTO outbox ({_COLUMNS}) "  # noqa: S608 - constants; values bound
    "VALUES (:event_id, :exchange, :routing_key, :aggregate_id, :envelope, :headers)"
).bindparams(bindparam("envelope", type_=JSONB), bindparam("headers", type_=JSONB))


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event bound for an exchange, as the outbox table stores it.

    `outbox_row(envelope, ...)` is the one way an event becomes a row. Then either
    `await row.insert(session)` (in the caller's transaction), or, in a one-statement fast path
    on a driver connection, `OutboxRow.insert_from(n)` as the last part of a data-modifying CTE
    with `*row.values()` as its parameters `$n` .. `$n+5`.
    """

    envelope: EventEnvelope
    exchange: str
    aggregate_id: str
    routing_key: str
    headers: Mapping[str, str]

    async def insert(self, session: AsyncSession | AsyncConnection) -> None:
        """Insert the row in the caller's transaction (commit is the caller's)."""
        await session.execute(
            _INSERT,
            {
                "event_id": self.envelope.event_id,
                "exchange": self.exchange,
                "routing_key": self.routing_key,
                "aggregate_id": self.aggregate_id,
                "envelope": self.envelope.model_dump(mode="json"),
                "headers": dict(self.headers),
            },
        )

    def values(self) -> tuple[Any, ...]:
        """The row's values for insert_from(), JSON as text, as the driver takes it."""
        return (
            self.envelope.event_id,
            self.exchange,
            self.routing_key,
            self.aggregate_id,
            self.envelope.model_dump_json(),
            json.dumps(dict(self.headers)),
        )

    @staticmethod
    def insert_from(first: int) -> str:
        """`INSERT INTO outbox ... SELECT $first .. $first+5` (values(), in order), for a CTE:
        `x AS (OutboxRow.insert_from(n) + " FROM o")` inserts it only when `o` returned a row."""
        n = [f"${first + i}" for i in range(6)]
        return (
            f"INSERT INTO outbox ({_COLUMNS}) "
            f"SELECT CAST({n[0]} AS uuid), CAST({n[1]} AS text), CAST({n[2]} AS text), "
            f"CAST({n[3]} AS text), CAST({n[4]} AS jsonb), CAST({n[5]} AS jsonb)"
        )


def outbox_row(
    envelope: EventEnvelope,
    *,
    exchange: str,
    aggregate_id: str,
    routing_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> OutboxRow:
    """The outbox row of an event: routed by its event type unless told otherwise, with the
    current trace context and request id in its headers (the relay publishes them)."""
    return OutboxRow(
        envelope=envelope,
        exchange=exchange,
        aggregate_id=aggregate_id,
        routing_key=routing_key or envelope.event_type,
        headers={**context_headers(), **(headers or {})},
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


__all__ = (
    "OUTBOX_CHANNEL",
    "OUTBOX_DDL",
    "OutboxRelay",
    "OutboxRow",
    "autocommit_sessions",
    "outbox_row",
)
