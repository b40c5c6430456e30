"""SqlAlchemyUnitOfWork: the UnitOfWork port on one AsyncSession (opened on first use).

A use case that only runs the self-committing fast paths (adapters/orders.py) never opens the
session: its commit and rollback then cost nothing.
"""

from __future__ import annotations

from shop_common.messaging.events import EventEnvelope
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from order_service.adapters.orders import SqlOrderRepository, order_outbox_row
from order_service.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory


class SqlOutbox:
    """Outbox rows inserted in the unit of work's transaction (the relay publishes them)."""

    def __init__(self, uow: SqlAlchemyUnitOfWork) -> None:
        self._uow = uow

    async def add(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        """Insert the event's row; it is published once the transaction commits."""
        await order_outbox_row(event, aggregate_id).insert(self._uow.session())


class SqlAlchemyUnitOfWork(UnitOfWork):
    """One transaction on the engine's pool, begun by the first statement that needs it."""

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self.orders = SqlOrderRepository(engine, self.session)
        self.outbox = SqlOutbox(self)

    def session(self) -> AsyncSession:
        """The unit of work's session, created on first use."""
        if self._session is None:
            self._session = self._sessions()
        return self._session

    async def commit(self) -> None:
        """Commit the session's transaction, if one was begun."""
        if self._session is not None:
            await self._session.commit()

    async def rollback(self) -> None:
        """Roll back what was not committed and return the connection to the pool."""
        session, self._session = self._session, None
        if session is not None:
            try:
                await session.rollback()
            finally:
                await session.close()


def sql_unit_of_work(engine: AsyncEngine) -> UnitOfWorkFactory:
    """A factory of units of work on `engine`."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    def new() -> UnitOfWork:
        return SqlAlchemyUnitOfWork(engine, sessions)

    return new
