"""The SQLAlchemy unit of work (service_layer.ports.UnitOfWork) and the engine it runs on."""

from __future__ import annotations

from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.inbox import claim_once
from shop_common.messaging.outbox import autocommit_sessions, outbox_row
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from catalog_service.adapters.repository import (
    CATALOG_EXCHANGE,
    SqlProductRepository,
    SqlReservationRepository,
)
from catalog_service.service_layer.ports import InboxClaim, UnitOfWork
from catalog_service.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """The pooled asyncpg engine of the catalog database."""
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
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self.products: SqlProductRepository = SqlProductRepository(reads)
        self.reservations: SqlReservationRepository = SqlReservationRepository(reads, engine)

    def _open(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work has no open transaction")
        return self._session

    async def begin(self) -> None:
        """Open a session and its transaction; the repositories join it."""
        self._session = self._sessions()
        await self._session.begin()
        self.products.session = self.reservations.session = self._session

    async def claim(self, claim: InboxClaim) -> bool:
        """The inbox row, in the transaction."""
        return await claim_once(self._open(), claim.event_id, claim.consumer)

    async def emit(self, event: EventEnvelope, *, aggregate_id: str) -> None:
        """The outbox row, in the transaction."""
        row = outbox_row(event, exchange=CATALOG_EXCHANGE, aggregate_id=aggregate_id)
        await row.insert(self._open())

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
        self.products.session = self.reservations.session = None
        if session is not None:
            await session.close()


class SqlUnitOfWorkFactory:
    """Fresh SqlUnitOfWork instances on one engine (the session factories are built once)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._reads = autocommit_sessions(self._sessions)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._reads, self.engine)
