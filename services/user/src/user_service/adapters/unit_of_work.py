"""The SQL unit of work: one SQLAlchemy connection and transaction per use case; at commit the
emitted events become outbox rows (outbox.py, relayed to the `users` exchange) and NOTIFYs
(notifications.py, fanned out to subscribers) in the same transaction, so an event is
published exactly when its change commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from user_service.adapters.notifications import NOTIFY_CHANNEL, notification
from user_service.adapters.outbox import add_user_event
from user_service.adapters.repository import SqlUserRepository
from user_service.service_layer.unit_of_work import AbstractUnitOfWork, UserChange


class SqlUnitOfWork(AbstractUnitOfWork):
    """A transaction on `engine`; a new one per `async with`."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def _begin(self) -> None:
        conn = await self._engine.connect()
        try:
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.users = SqlUserRepository(conn)

    async def _commit(self, changes: list[UserChange]) -> None:
        assert self._conn is not None, "commit() outside `async with`"
        for change in changes:
            await add_user_event(
                self._conn, change.event_type, change.user, correlation_id=change.correlation_id
            )
            payload = notification(change.event_type, change.user)
            await self._conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, payload)))
        await self._conn.commit()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing a connection whose transaction is still open rolls it back.
            await conn.close()
