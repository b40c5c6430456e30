"""The async engine (connection pool), the asyncpg read pool of the GetUser fast path, and
which of their exceptions mean "the database is unavailable"."""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import PostgresConnectionError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from user_service.settings import Settings

# What a call fails with when PostgreSQL is down, unreachable or out of connections: the gRPC edge
# answers UNAVAILABLE ("database unavailable") for these, INTERNAL for anything unexpected.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
    PostgresConnectionError,
)


def create_engine(settings: Settings) -> AsyncEngine:
    """A pooled asyncpg engine with a statement timeout (dead connections are dropped on first use)."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No pre-ping (a round-trip per checkout); a connection that died is invalidated on use.
        pool_pre_ping=False,
        pool_timeout=5,
        connect_args={
            "timeout": 5,
            "command_timeout": settings.db_statement_timeout_ms / 1000,
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "application_name": settings.service_name,
            },
        },
    )


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a plain asyncpg DSN (for the LISTEN connection)."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_read_pool(settings: Settings) -> asyncpg.Pool:
    """A small asyncpg pool for the GetUser hot path (connects lazily: min_size=0)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.database_url),
        min_size=0,
        max_size=settings.db_read_pool_size,
        timeout=5,
        command_timeout=settings.db_statement_timeout_ms / 1000,
        server_settings={"application_name": f"{settings.service_name}-reads"},
        reset=_keep_session,
    )
    return pool


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """No reset query on release: this pool only runs one read-only SELECT, so there is no
    session state to clear, and the default reset costs a round-trip per call."""
