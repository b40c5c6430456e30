"""CoalescingReader against real PostgreSQL: concurrent reads share queries, errors reach every
caller, a caller that goes away harms no other, and the reader recovers after the database does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from user_service.adapters.coalescing import CoalescingReader as Reader

pytestmark = pytest.mark.infra

SQL = "SELECT id, name FROM items WHERE id = ANY($1::bigint[])"


_readers: list[Reader] = []


def CoalescingReader(*args: Any, **kwargs: Any) -> Reader:
    """A reader closed (its connections given back) before the pool closes."""
    reader = Reader(*args, **kwargs)
    _readers.append(reader)
    return reader


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    await pool.execute("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)")
    await pool.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 200) g")
    yield pool
    while _readers:
        await _readers.pop().close()
    await asyncio.wait_for(pool.close(), 10)


async def test_concurrent_reads_share_queries_and_each_gets_its_own_row(
    pool: asyncpg.Pool,
) -> None:
    reader = CoalescingReader(pool, SQL, max_queries=1)
    keys = [*range(1, 201), 7, 7, 404]
    rows = await asyncio.gather(*(reader.get(key) for key in keys))
    assert [row["name"] if row else None for row in rows] == [
        *(f"item {key}" for key in range(1, 201)),
        "item 7",
        "item 7",
        None,
    ]
    assert reader.reads == len(keys)
    # All of them arrived before the query task first ran, so one query served them all.
    assert reader.queries == 1


async def test_a_key_out_of_bigint_range_finds_nothing_and_spoils_no_batch(
    pool: asyncpg.Pool,
) -> None:
    reader = CoalescingReader(pool, SQL, max_queries=1)
    rows = await asyncio.gather(reader.get(2**63), reader.get(9), reader.get(-(2**63) - 1))
    assert rows[0] is None and rows[2] is None
    assert rows[1]["name"] == "item 9"


async def test_at_low_load_a_read_goes_out_at_once_alone(pool: asyncpg.Pool) -> None:
    reader = CoalescingReader(pool, SQL, max_queries=1)
    for key in (3, 4, 5):
        assert (await reader.get(key))["name"] == f"item {key}"
    assert (reader.queries, reader.reads) == (3, 3)


async def test_batches_are_capped_at_max_batch(pool: asyncpg.Pool) -> None:
    reader = CoalescingReader(pool, SQL, max_queries=1, max_batch=50)
    rows = await asyncio.gather(*(reader.get(key) for key in range(1, 201)))
    assert all(row is not None for row in rows)
    assert reader.queries == 4


async def test_a_failing_query_fails_every_caller_of_its_batch_and_no_later_read(
    pool: asyncpg.Pool,
) -> None:
    broken = CoalescingReader(pool, "SELECT id FROM no_such_table WHERE id = ANY($1::bigint[])")
    results = await asyncio.gather(*(broken.get(key) for key in range(5)), return_exceptions=True)
    assert all(isinstance(r, asyncpg.UndefinedTableError) for r in results)
    reader = CoalescingReader(pool, SQL)
    assert (await reader.get(1))["name"] == "item 1"


async def test_a_caller_that_goes_away_does_not_disturb_the_others(pool: asyncpg.Pool) -> None:
    reader = CoalescingReader(pool, SQL, max_queries=1)
    first = asyncio.ensure_future(reader.get(1))
    waiting = [asyncio.ensure_future(reader.get(key)) for key in (2, 3, 4)]
    await asyncio.sleep(0)  # all four are queued; the first query is on its way
    waiting[1].cancel()
    assert (await first)["name"] == "item 1"
    assert (await waiting[0])["name"] == "item 2"
    assert (await waiting[2])["name"] == "item 4"
    assert waiting[1].cancelled()
    assert reader.reads == 3


async def test_reads_survive_the_pooled_connections_being_killed(
    pool: asyncpg.Pool, postgres_url: str, database_url: str
) -> None:
    reader = CoalescingReader(pool, SQL, max_queries=1)
    assert (await reader.get(1))["name"] == "item 1"
    admin = await asyncpg.connect(postgres_url)
    try:
        database = database_url.rsplit("/", 1)[1]
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
    finally:
        await admin.close()
    # The idle connection died; the read finds out, has the pool replace it and reads again.
    rows = await asyncio.gather(*(reader.get(key) for key in (1, 2, 3)))
    assert [row["name"] for row in rows] == ["item 1", "item 2", "item 3"]
    assert (await reader.get(5))["name"] == "item 5"


async def test_a_query_slot_keeps_its_connection_until_close(pool: asyncpg.Pool) -> None:
    reader = CoalescingReader(
        pool, "SELECT id, pg_backend_pid() AS pid FROM items WHERE id = ANY($1::bigint[])"
    )
    pids = {(await reader.get(key))["pid"] for key in (1, 2, 3)}
    assert len(pids) == 1  # one connection served the three queries
    assert pool.get_idle_size() == pool.get_size() - 1  # and is still out of the pool
    await reader.close()
    assert pool.get_idle_size() == pool.get_size()  # given back
    await asyncio.wait_for(pool.close(), 5)  # nothing left for the pool's close to wait for


async def test_close_cancels_the_waiting_reads(pool: asyncpg.Pool) -> None:
    reader = CoalescingReader(
        pool, "SELECT id, pg_sleep(5) FROM items WHERE id = ANY($1::bigint[])", max_queries=1
    )
    reads = [asyncio.ensure_future(reader.get(key)) for key in (1, 2)]
    await _until_a_query_runs(pool, "pg_sleep(5)")
    reads.append(asyncio.ensure_future(reader.get(3)))  # waits behind the running query
    await asyncio.sleep(0)
    await reader.close()
    results = await asyncio.gather(*reads, return_exceptions=True)
    assert len(results) == 3
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


async def test_close_before_the_first_query_starts_cancels_the_reads(pool: asyncpg.Pool) -> None:
    reader = CoalescingReader(pool, SQL)
    read = asyncio.ensure_future(reader.get(1))
    await asyncio.sleep(0)  # the read is queued; its query task has not run yet
    await reader.close()
    with pytest.raises(asyncio.CancelledError):
        await read


async def _until_a_query_runs(pool: asyncpg.Pool, fragment: str) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    async with pool.acquire() as probe:
        while asyncio.get_running_loop().time() < deadline:
            running = await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                fragment,
            )
            if running:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"no query with {fragment!r} started within 5 s")
