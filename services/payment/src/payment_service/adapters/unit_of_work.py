"""The SQLAlchemy unit of work (service_layer.unit_of_work.UnitOfWork) and the engine it runs on.

`SqlUnitOfWorkFactory(engine)` builds the session factories once; each call gives a fresh unit
of work whose repository runs single statements outside a transaction, and joins the
transaction between `begin()` (or `async with`) and `commit()`/`rollback()`.
"""

from __future__ import annotations

from uuid import UUID

from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.inbox import claim_once
from shop_common.messaging.outbox import autocommit_sessions
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from payment_service.adapters.repository import SqlPaymentRepository, outbox_row_of
from payment_service.service_layer.unit_of_work import UnitOfWork
from payment_service.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """The pooled asyncpg engine of the payments database."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_timeout=5,
        connect_args={"timeout": 5, "server_settings": {"application_name": settings.service_name}},
    )


class SqlUnitOfWork(UnitOfWork):
    """A transaction on one session of the engine's pool, opened by begin()."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession],
    ) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self.payments: SqlPaymentRepository = SqlPaymentRepository(engine, reads)

    def _open(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work has no open transaction")
        return self._session

    async def begin(self) -> None:
        """Open a session and its transaction; the repository joins it."""
        self._session = self._sessions()
        await self._session.begin()
        self.payments.session = self._session

    async def claim(self, event_id: UUID, consumer: str) -> bool:
        """The inbox claim, in the transaction."""
        return await claim_once(self._open(), event_id, consumer)

    async def emit(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        """The outbox row, in the transaction."""
        await outbox_row_of(event, aggregate_id).insert(self._open())

    async def commit(self) -> None:
        """Commit and close the session."""
        session = self._open()
        try:
            await session.commit()
        finally:
            await self._close()

    async def rollback(self) -> None:
        """Roll back and close the session, if one is open."""
        if self._session is not None:
            try:
                await self._session.rollback()
            finally:
                await self._close()

    async def _close(self) -> None:
        session, self._session = self._session, None
        self.payments.session = None
        if session is not None:
            await session.close()


class SqlUnitOfWorkFactory:
    """Fresh SqlUnitOfWork instances on one engine (the session factories are built once)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._reads = autocommit_sessions(self._sessions)  # single reads: no BEGIN/ROLLBACK

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self._sessions, self._reads)
