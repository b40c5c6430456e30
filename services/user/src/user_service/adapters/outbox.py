"""Writes user events into the outbox table in the caller's transaction.

The row carries the envelope shape of contracts.md (event_id, event_type, occurred_at,
version, correlation_id, causation_id, payload); a relay publishes it to the `users` exchange.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from user_service.adapters.tables import outbox
from user_service.domain.model import User, UserEventType

USERS_EXCHANGE = "users"


def user_payload(event_type: UserEventType, user: User) -> dict[str, Any]:
    """UserChanged (created/updated) or UserDeleted payload."""
    if event_type is UserEventType.DELETED:
        return {"user_id": user.id}
    return {"user_id": user.id, "email": user.email, "name": user.name, "roles": list(user.roles)}


def envelope(
    event_type: UserEventType, user: User, *, correlation_id: str | None
) -> dict[str, Any]:
    """The event envelope as stored in outbox.envelope."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type.value,
        "occurred_at": datetime.now(UTC).isoformat(),
        "version": 1,
        "correlation_id": correlation_id,
        "causation_id": None,
        "payload": user_payload(event_type, user),
    }


async def add_user_event(
    conn: AsyncConnection,
    event_type: UserEventType,
    user: User,
    *,
    correlation_id: str | None,
) -> dict[str, Any]:
    """Insert one outbox row for this change (same transaction as the change)."""
    body = envelope(event_type, user, correlation_id=correlation_id)
    await conn.execute(
        insert(outbox).values(
            event_id=uuid.UUID(body["event_id"]),
            exchange=USERS_EXCHANGE,
            routing_key=event_type.value,
            aggregate_id=str(user.id),
            envelope=body,
            headers={"x-request-id": correlation_id} if correlation_id else {},
            attempts=0,
        )
    )
    return body
