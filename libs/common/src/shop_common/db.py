"""Hot-path statements straight on asyncpg, under the SQLAlchemy engine's own pool.

SQLAlchemy's execute path (cache key, parameter processing, result proxy, session and transaction
bookkeeping) costs about 150 µs of CPU per statement on these machines, as much as the asyncpg
round trip it wraps (measured: one autocommit `text()` statement through a session ~300 µs of CPU,
the same statement on the pooled connection's asyncpg driver ~140 µs, pool checkout included).
The few fixed statements every order runs through (create, payment result, charge, the outbox
relay's claim and mark) use `driver_connection` instead; everything else keeps SQLAlchemy.

What stays the same for callers:
- one pool: the driver connection is checked out of the engine's pool and returned to it;
- the codecs: SQLAlchemy's asyncpg dialect registers json/jsonb codecs on every connection, so
  a json/jsonb parameter is passed as JSON text and comes back as Python values;
- the errors: asyncpg's exceptions are raised as SQLAlchemy's (IntegrityError for a constraint,
  OperationalError for a lost or refused connection, DBAPIError otherwise), so the callers'
  `except IntegrityError` and the web layer's 503 mapping (shop_common.web.outages) still apply.
  A connection that failed is invalidated, so the pool never hands it out again.
- no transaction is opened: each statement commits on its own (one round trip), unless the
  caller opens `connection.transaction()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

# Errors that mean the connection (or the server) is gone: the connection is not reused.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


def translate(error: BaseException) -> sa_exc.DBAPIError | None:
    """The SQLAlchemy exception SQLAlchemy itself would raise for this asyncpg error, or None
    when it is not a database error."""
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(None, None, error)
    if isinstance(error, (*_CONNECTION_LOST, asyncpg.exceptions.QueryCanceledError)):
        return sa_exc.OperationalError(None, None, error)
    if isinstance(error, asyncpg.PostgresError):
        return sa_exc.DBAPIError(None, None, error)
    return None


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection of one of the engine's pooled connections, for fixed statements
    (`$1` placeholders). Yields `asyncpg.Connection` (typed Any: asyncpg ships no types)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        try:
            yield raw.driver_connection
        except Exception as error:
            translated = translate(error)
            if translated is None:
                raise
            if isinstance(error, _CONNECTION_LOST):
                await conn.invalidate()
            raise translated from error
