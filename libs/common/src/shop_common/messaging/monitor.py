"""Sampled messaging gauges for /metrics: queue depths and the outbox lag.

Each service samples every queue it consumes, with its retry tiers and its DLQ
(`Topology.monitored_queues`), so a backlog, a retry storm and a parked message all show.

One module-level gauge shared by every service, so two apps built in one process (the
pipeline tests) register it once. The monitor samples in the background: a scrape never
waits on the broker or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aio_pika.abc import AbstractRobustConnection
from prometheus_client import Gauge

from shop_common.logging import get_logger
from shop_common.messaging.relay import OutboxRelay
from shop_common.observability.propagation import untraced

log = get_logger(__name__)

QUEUE_DEPTH = Gauge(
    "shop_queue_depth",
    "Messages ready in a queue at the last sample (work queues, retry tiers, DLQs).",
    ["queue"],
)


async def queue_depths(
    connection: AbstractRobustConnection, queues: Sequence[str]
) -> dict[str, int]:
    """Ready messages per queue (passive declare; a missing queue is left out)."""
    depths: dict[str, int] = {}
    for name in queues:
        # A passive declare of a missing queue closes the channel: one channel per queue.
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = int(queue.declaration_result.message_count or 0)
        except Exception as error:  # missing queue or broker trouble: keep the other samples
            log.debug("queue_depth_unavailable", queue=name, error=repr(error))
        finally:
            if not channel.is_closed:
                await channel.close()
    return depths


class MessagingMonitor:
    """Samples queue depths and the outbox lag every `interval` seconds until stopped."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queues: Sequence[str],
        relay: OutboxRelay | None = None,
        *,
        interval: float = 15.0,
    ) -> None:
        self._connection = connection
        self._queues = tuple(queues)
        self._relay = relay
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def sample(self) -> dict[str, int]:
        """Sample once now (also what the background task does)."""
        depths = await queue_depths(self._connection, self._queues)
        for name, depth in depths.items():
            QUEUE_DEPTH.labels(name).set(depth)
        if self._relay is not None:
            await self._relay.measure_lag()
        return depths

    async def start(self) -> None:
        """Start sampling in a background task."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="messaging-monitor")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop sampling: let a sample in progress end, cancel only past `grace` seconds.

        Cancelling in the middle of a Channel.Open desynchronises aiormq's channel numbers from
        the broker's, which then closes the whole shared connection (CHANNEL_ERROR - expected
        'channel.open') under the consumer and the relay.
        """
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _run(self) -> None:
        with untraced():  # sampling starts no trace (its outbox queries would, every round)
            await self._loop()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sample()
            except Exception as error:  # broker or database down: sample again later
                log.warning("messaging_sample_failed", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
