"""The outbox relay: claims unsent rows, publishes with confirms, marks them sent after the confirm.

Several relays may run: rows are claimed FOR UPDATE SKIP LOCKED, and an aggregate is published
by one relay at a time (transaction-scoped advisory lock) and only from its oldest unsent row, so
per-aggregate order holds. A crash before the mark rolls the claim back: the rows are published
again (at least once; the consumer's inbox absorbs the duplicate).

Each row is published in the trace context stored in its headers when it was written
(shop_common.observability): the publish span is a child of the request's span that wrote the
row; a row stored without one (written by untraced background work) is published untraced.
The relay's own statements (claims, marks, the sweep) are not traced.

The module is long because the claim, publish and mark steps and their failure cases (confirm
timeouts, unroutable rows, the retention sweep) only make sense read together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.db import driver_connection
from shop_common.logging import get_logger
from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.publisher import Publisher, PublishError
from shop_common.observability.propagation import (
    TRACE_HEADERS,
    TRACEPARENT_HEADER,
    continued_from,
    untraced,
)

log = get_logger(__name__)

OUTBOX_CHANNEL = "outbox"  # the channel the DDL's trigger notifies
PRIORITY_HEADER = "x-priority"
OUTBOX_PUBLISHED = Counter("shop_outbox_published_total", "Outbox rows published and marked sent.")
OUTBOX_PENDING = Gauge("shop_outbox_pending", "Unsent outbox rows at the last check.")
OUTBOX_LAG = Gauge("shop_outbox_lag_seconds", "Age of the oldest unsent outbox row.")
OUTBOX_BATCH_ROWS = Histogram(
    "shop_outbox_batch_rows",
    "Rows published per relay batch (larger batches: fewer round trips per event).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)

# One statement claims a batch and keeps what this relay may publish now (one round trip):
# - `claimed`: the oldest unsent rows no other relay holds (FOR UPDATE SKIP LOCKED);
# - `owned`: their aggregates whose transaction-scoped advisory lock we obtained (an aggregate
#   is published by one relay at a time);
# - of each owned aggregate, the claimed rows that form an unbroken prefix of its unsent rows:
#   row k of the claimed rows is kept when it is also row k of all the unsent rows. Once one
#   differs (another relay holds, or skipped, an older row), every later one differs too, so
#   nothing overtakes an older event of its aggregate.
# The CTEs are MATERIALIZED so that the locks are taken once, on exactly the claimed rows.
# `claimed` (a count) tells the drain loop whether the batch was full.
_CLAIM = (
    "WITH claimed AS MATERIALIZED ("
    " SELECT id, exchange, routing_key, aggregate_id, envelope, headers FROM outbox"
    " WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED),"
    " owned AS MATERIALIZED ("
    " SELECT d.aggregate_id FROM (SELECT DISTINCT aggregate_id FROM claimed) d"
    " WHERE pg_try_advisory_xact_lock(hashtextextended(d.aggregate_id, 7))),"
    " mine AS (SELECT c.*, row_number() OVER (PARTITION BY c.aggregate_id ORDER BY c.id) AS n"
    " FROM claimed c JOIN owned w USING (aggregate_id)),"
    " unsent AS (SELECT o.id, row_number() OVER (PARTITION BY o.aggregate_id ORDER BY o.id) AS n"
    " FROM outbox o JOIN owned w USING (aggregate_id) WHERE o.sent_at IS NULL)"
    " SELECT m.id, m.exchange, m.routing_key, m.aggregate_id, m.envelope, m.headers,"
    " (SELECT count(*) FROM claimed) AS claimed"
    " FROM mine m JOIN unsent u ON u.id = m.id AND u.n = m.n ORDER BY m.id"
)
_MARK_SENT = (
    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL "
    "WHERE id = ANY($1::bigint[])"
)
_MARK_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1"
_PRUNE = text("DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => :seconds)")
_LAG = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM outbox WHERE sent_at IS NULL"
)


@dataclass(frozen=True)
class _Row:
    id: int
    exchange: str
    routing_key: str
    aggregate_id: str
    envelope: dict[str, Any]
    headers: dict[str, Any]


class OutboxRelay:
    """Publishes a service's outbox; start() runs it in the background, stop() drains it."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: Publisher,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(days=7),
        prune_interval: float = 60.0,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._prune_interval = prune_interval
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Start listening on the outbox channel and relaying in a background task."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the batch in hand, publish what is pending (drain), then stop."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._unlisten()

    async def relay_once(self) -> int:
        """Claim, publish and mark one batch; returns how many rows were marked sent."""
        return (await self._relay_batch())[1]

    async def _relay_batch(self) -> tuple[int, int]:
        """One batch: (rows claimed, rows marked sent), in four round trips (BEGIN, the claim,
        the mark, COMMIT) whatever the batch's size; the publishes are pipelined between.
        Straight on asyncpg (shop_common.db): this runs for every event of every service."""
        async with driver_connection(self._engine) as conn, conn.transaction():
            records = await conn.fetch(_CLAIM, self._batch_size)
            if not records:
                # Nothing claimable, or nothing this relay may publish first (other relays hold
                # the older rows of every aggregate it claimed): nothing to do until woken.
                return 0, 0
            sent, failed = await self._publish([_row(r) for r in records])
            if sent:
                await conn.execute(_MARK_SENT, sent)
            for row_id, error in failed.items():
                await conn.execute(_MARK_FAILED, row_id, error[:500])
        OUTBOX_PUBLISHED.inc(len(sent))
        OUTBOX_BATCH_ROWS.observe(len(records))
        return int(records[0]["claimed"]), len(sent)

    async def _drain(self) -> None:
        """Batches until one makes no progress or leaves nothing behind.

        A partial batch all of which was sent means nothing else was claimable (rows committed
        since then wake us again through NOTIFY): no extra empty claim per wake-up.
        """
        while True:
            claimed, sent = await self._relay_batch()
            if sent == 0 or (claimed < self._batch_size and sent == claimed):
                return

    async def prune(self) -> int:
        """Delete rows sent longer ago than the retention; returns how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(_PRUNE, {"seconds": self._retention.total_seconds()})
        return int(result.rowcount or 0)

    async def measure_lag(self) -> tuple[int, float]:
        """Unsent rows and the age in seconds of the oldest (also exported as gauges)."""
        async with self._engine.connect() as conn:
            pending, lag = (await conn.execute(_LAG)).one()
        OUTBOX_PENDING.set(pending)
        OUTBOX_LAG.set(float(lag))
        return int(pending), float(lag)

    async def _publish(self, rows: list[_Row]) -> tuple[list[int], dict[int, str]]:
        chains: dict[str, list[_Row]] = defaultdict(list)
        for row in rows:
            chains[row.aggregate_id].append(row)
        sent: list[int] = []
        failed: dict[int, str] = {}

        async def publish_chain(chain: list[_Row]) -> None:
            for row in chain:  # in order; the first failure holds back the rest of its aggregate
                try:
                    await self._publish_row(row)
                except PublishError as error:
                    failed[row.id] = str(error)
                    return
                sent.append(row.id)

        await asyncio.gather(*(publish_chain(chain) for chain in chains.values()))
        return sent, failed

    async def _publish_row(self, row: _Row) -> None:
        headers = {
            k: v
            for k, v in row.headers.items()
            if isinstance(v, str | int) and k not in TRACE_HEADERS
        }
        priority = headers.pop(PRIORITY_HEADER, None)
        # The publisher puts the (restored) current trace context in the message's headers. A
        # row written outside any trace (background work: the saga-timeout sweep) starts none.
        traced = TRACEPARENT_HEADER in row.headers
        with continued_from(row.headers) if traced else untraced():
            await self._publisher.publish(
                row.exchange,
                EventEnvelope.model_validate(row.envelope),
                routing_key=row.routing_key,
                headers=headers,
                priority=int(priority) if priority is not None else None,
            )

    async def _run(self) -> None:
        with untraced():  # the task's context: its statements make no spans (publishes do)
            await self._loop()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            await self._listen()
            self._wake.clear()
            try:
                await self._drain()
                if loop.time() >= next_prune:
                    await self.prune()
                    await self.measure_lag()
                    next_prune = loop.time() + self._prune_interval
            except Exception as error:  # database or broker down: keep going, poll again
                log.warning("outbox_relay_pass_failed", error=repr(error))
            if self._stopping.is_set():
                await self._final_drain()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def _final_drain(self) -> None:
        """At stop: publish rows committed while the last pass ran (a stopping consumer's last
        commits), whose NOTIFY would otherwise wake nobody; until a batch sends nothing."""
        try:
            while await self.relay_once() > 0:
                pass
        except Exception as error:  # left unsent: the next process's relay publishes them
            log.warning("outbox_relay_final_drain_failed", error=repr(error))

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        dsn = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            self._listener = await asyncpg.connect(dsn)
            await self._listener.add_listener(OUTBOX_CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError) as error:
            # Polling still relays; the next pass tries to listen again.
            log.warning("outbox_listen_failed_polling", error=repr(error))
            self._listener = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _unlisten(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._listener = None


def _row(record: Any) -> _Row:
    """An asyncpg record of the claim (jsonb columns arrive decoded: shop_common.db)."""
    return _Row(
        id=record["id"],
        exchange=record["exchange"],
        routing_key=record["routing_key"],
        aggregate_id=record["aggregate_id"],
        envelope=dict(record["envelope"]),
        headers=dict(record["headers"] or {}),
    )
