"""Idempotent consumer: an inbox row per (event_id, consumer) in the handler's own transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

INBOX_DDL: list[str] = [
    """CREATE TABLE inbox (
  event_id UUID NOT NULL,
  consumer TEXT NOT NULL,
  processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, consumer)
)""",
]

_CLAIM = text(
    "INSERT INTO inbox (event_id, consumer) VALUES (:event_id, :consumer) "
    "ON CONFLICT (event_id, consumer) DO NOTHING RETURNING event_id"
)


async def claim_once(
    session: AsyncSession | AsyncConnection, event_id: uuid.UUID, consumer: str
) -> bool:
    """Record event_id as processed by consumer; False when it already was.

    Call it inside the transaction that applies the handler's effect: if that transaction rolls
    back, the claim rolls back with it, and a concurrent duplicate blocks on the primary key
    until the first commits, then sees the conflict.
    """
    result = await session.execute(_CLAIM, {"event_id": event_id, "consumer": consumer})
    return result.first() is not None
