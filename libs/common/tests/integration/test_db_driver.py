"""shop_common.db.driver_connection against real PostgreSQL: codecs, errors, pool hygiene."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from shop_common.db import driver_connection
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

pytestmark = pytest.mark.infra


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url, pool_size=1, max_overflow=0)
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INT PRIMARY KEY, doc JSONB NOT NULL)"))
    yield eng
    await eng.dispose()


async def test_statements_commit_alone_and_jsonb_is_json_text_in_python_values_out(
    engine: AsyncEngine,
) -> None:
    async with driver_connection(engine) as conn:
        await conn.execute("INSERT INTO t VALUES ($1, $2)", 1, json.dumps({"a": [1, 2]}))
        assert not conn.is_in_transaction()
    async with engine.connect() as conn:  # seen by SQLAlchemy: it committed on its own
        row = (await conn.execute(text("SELECT doc FROM t WHERE id = 1"))).one()
    assert row.doc == {"a": [1, 2]}
    async with driver_connection(engine) as conn:
        assert await conn.fetchval("SELECT doc FROM t WHERE id = 1") == {"a": [1, 2]}


async def test_errors_are_sqlalchemys_and_a_transaction_rolls_back(engine: AsyncEngine) -> None:
    async with driver_connection(engine) as conn:
        await conn.execute("INSERT INTO t VALUES (1, '{}')")

    async def both_in_one_transaction() -> None:
        async with driver_connection(engine) as conn, conn.transaction():
            await conn.execute("INSERT INTO t VALUES (2, '{}')")
            await conn.execute("INSERT INTO t VALUES (1, '{}')")

    with pytest.raises(sa_exc.IntegrityError):
        await both_in_one_transaction()
    with pytest.raises(sa_exc.DBAPIError) as raised:
        async with driver_connection(engine) as conn:
            await conn.execute("SELECT * FROM no_such_table")
    assert not isinstance(raised.value, sa_exc.IntegrityError | sa_exc.OperationalError)
    async with driver_connection(engine) as conn:
        assert await conn.fetchval("SELECT count(*) FROM t") == 1  # row 2 rolled back


async def test_a_lost_connection_is_operational_error_and_never_reused(
    engine: AsyncEngine,
) -> None:
    async with driver_connection(engine) as conn:
        first_pid = await conn.fetchval("SELECT pg_backend_pid()")
    other = create_async_engine(engine.url, pool_size=1)
    try:
        async with other.begin() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
    finally:
        await other.dispose()
    # The pool's only connection: it was terminated while idle; using it fails as an outage...
    with pytest.raises(sa_exc.OperationalError):
        async with driver_connection(engine) as conn:
            await conn.fetchval("SELECT 1")
    # ... and it was invalidated, so the next checkout is a fresh, working connection.
    async with driver_connection(engine) as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") != first_pid
