"""Writes user events into the outbox table in the caller's transaction.

The event is an EventEnvelope of contracts.md (new_event with its typed payload), written through
shop_common's one outbox API (outbox_row), as every service writes its events; a relay publishes
it to the `users` exchange.
"""

from __future__ import annotations

from shop_common.messaging.events import EventEnvelope, UserChanged, UserDeleted, new_event
from shop_common.messaging.outbox import outbox_row
from sqlalchemy.ext.asyncio import AsyncConnection

from user_service.domain.model import User, UserEventType

USERS_EXCHANGE = "users"


def user_event(
    event_type: UserEventType, user: User, *, correlation_id: str | None
) -> EventEnvelope:
    """user.created/updated carry UserChanged; user.deleted carries UserDeleted."""
    payload: UserChanged | UserDeleted = (
        UserDeleted(user_id=user.id)
        if event_type is UserEventType.DELETED
        else UserChanged(user_id=user.id, email=user.email, name=user.name, roles=list(user.roles))
    )
    return new_event(event_type.value, payload, correlation_id=correlation_id)


async def add_user_event(
    conn: AsyncConnection,
    event_type: UserEventType,
    user: User,
    *,
    correlation_id: str | None,
) -> EventEnvelope:
    """Insert one outbox row for this change (same transaction as the change)."""
    envelope = user_event(event_type, user, correlation_id=correlation_id)
    headers = {"x-request-id": correlation_id} if correlation_id else None
    row = outbox_row(envelope, exchange=USERS_EXCHANGE, aggregate_id=str(user.id), headers=headers)
    await row.insert(conn)
    return envelope
