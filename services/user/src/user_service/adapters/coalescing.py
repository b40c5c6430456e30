"""Coalescing concurrent point reads by primary key into one `WHERE id = ANY($1)` query.

GetUser is the hot path (every order, every gateway page). Under load, one query per call spends
most of the server's CPU on the asyncpg round trip itself (pool checkout, Bind/Execute, a wake-up
of the event loop for the reply, the release), not on the row. Here at most `max_queries` queries
run at once; the reads that arrive while they run wait and go together in the next query. There
is no timer: at low load a read goes out at once, alone, so nothing waits for a batch to fill.

Every read still goes to the database after it arrived (nothing is cached), so a read that starts
after a committed write sees that write.

Each of the `max_queries` query slots keeps the pool connection it took between its queries
(instead of an acquire and a release per query, measured at ~40 us of CPU per query, more than
half of the query itself), until `close()` gives them back: close the reader before its pool.

Tracing: a batch's query (the asyncpg instrumentation's span) runs in the trace context of the
first read of that batch, so it is a child of that call's server span; the other reads of the
batch share it without a span of their own (the drain task would otherwise put every batch it
runs into the trace of the read that started it, long after that call ended).

Exported: shop_user_coalesced_queries_total and shop_user_coalesced_reads_total (reads per
query = how much coalescing saves; docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from asyncpg.exceptions import InternalClientError, PostgresConnectionError
from prometheus_client import Counter
from shop_common.observability import current_trace_context, in_trace_context

COALESCED_QUERIES = Counter(
    "shop_user_coalesced_queries_total",
    "`id = ANY($1)` queries the GetUser coalescing reader ran (each answers a batch of reads).",
)
COALESCED_READS = Counter(
    "shop_user_coalesced_reads_total",
    "GetUser reads answered by the coalescing reader's queries.",
)

# What a pooled connection that died while idle (server restart, pg_terminate_backend) raises on
# its next use; asyncpg reports an unsolicited FATAL on an idle connection as InternalClientError
# ("cannot switch to state ..."). A read is safe to repeat once, on a fresh connection.
_DEAD_CONNECTION = (
    PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.InterfaceError,
    InternalClientError,
    ConnectionError,
)
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


class _Slot:
    """One query slot: the pool connection it holds between queries (None until its first)."""

    __slots__ = ("connection",)

    def __init__(self) -> None:
        self.connection: Any = None


class CoalescingReader:
    """Reads rows by id through `sql` (one `$1::bigint[]` parameter), batching concurrent reads."""

    def __init__(
        self, pool: asyncpg.Pool, sql: str, *, max_queries: int = 1, max_batch: int = 500
    ) -> None:
        if max_queries < 1 or max_batch < 1:
            raise ValueError("max_queries and max_batch must be at least 1")
        self._pool = pool
        self._sql = sql
        self._max_queries = max_queries
        self._max_batch = max_batch
        # Each read: its key, its caller's future and its caller's trace context.
        self._pending: list[tuple[int, asyncio.Future[Any], Any]] = []
        self._running: set[asyncio.Task[None]] = set()
        # Slots not used by a running query, with the connections they hold.
        self._idle: list[_Slot] = []
        # Counted by the drain loop itself: a finished task leaves `_running` only a loop
        # iteration later (done callbacks are scheduled), too late for a read arriving meanwhile.
        self._draining = 0
        self.queries = 0  # how many queries served how many reads (for tests and the bench)
        self.reads = 0

    async def get(self, key: int) -> Any:
        """The row (an asyncpg Record) with this id, or None."""
        if not _BIGINT_MIN <= key <= _BIGINT_MAX:
            # No row can have it, and it must not fail the query of the batch it would join.
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((key, future, current_trace_context()))
        if self._draining < self._max_queries:
            self._draining += 1
            task = asyncio.get_running_loop().create_task(self._drain(), name="user-reads")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return await future

    async def _drain(self) -> None:
        """Run queries until no read is waiting."""
        slot = self._idle.pop() if self._idle else _Slot()
        try:
            await self._drain_pending(slot)
        finally:
            self._draining -= 1
            self._idle.append(slot)

    async def _drain_pending(self, slot: _Slot) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            # Reads whose callers went away (deadline, cancel) are not asked for.
            live = [read for read in batch if not read[1].done()]
            if not live:
                continue
            try:
                with in_trace_context(live[0][2]):  # the first read's
                    rows = await self._fetch(slot, list({key for key, _, _ in live}))
            except asyncio.CancelledError:
                for _, future, _ in live + self._pending:
                    future.cancel()
                self._pending.clear()
                raise
            except Exception as exc:
                # Every caller of this batch gets the error (mapped to UNAVAILABLE at the edge).
                for _, future, _ in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.queries += 1
            self.reads += len(live)
            COALESCED_QUERIES.inc()
            COALESCED_READS.inc(len(live))
            by_key = {row["id"]: row for row in rows}
            for key, future, _ in live:
                if not future.done():
                    future.set_result(by_key.get(key))

    async def _fetch(self, slot: _Slot, keys: list[int]) -> list[Any]:
        try:
            if slot.connection is None:
                slot.connection = await self._pool.acquire()
            rows: list[Any] = await slot.connection.fetch(self._sql, keys)
        except _DEAD_CONNECTION:
            # One connection dead usually means all are (a restart): give the broken one back,
            # have the pool replace every idle one, then try once more on a fresh connection.
            await self._give_back(slot)
            await self._pool.expire_connections()
            slot.connection = await self._pool.acquire()
            rows = await slot.connection.fetch(self._sql, keys)
        return rows

    async def _give_back(self, slot: _Slot) -> None:
        connection, slot.connection = slot.connection, None
        if connection is None:
            return
        # A connection the pool cannot reset (a dead one) is terminated by the pool itself.
        with contextlib.suppress(Exception):
            await self._pool.release(connection)

    async def close(self) -> None:
        """Cancel running queries (waiting reads are cancelled) and give the connections back."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._draining = 0
        # A drain task cancelled before its first step never saw its batch.
        for _, future, _ in self._pending:
            future.cancel()
        self._pending.clear()
        for slot in self._idle:
            await self._give_back(slot)
