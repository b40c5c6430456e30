"""Broker gauges for /metrics: ready messages in a work queue and its DLQ, sampled periodically.

One module for every service, so that two apps in one process (pipeline tests) share the metric
objects instead of registering the same name twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from aio_pika.abc import AbstractRobustConnection
from prometheus_client import Gauge

from shop_common.logging import get_logger
from shop_common.messaging.topology import QueueSpec

log = get_logger(__name__)

QUEUE_DEPTH = Gauge(
    "shop_queue_depth", "Ready messages in a work queue at the last sample.", ["queue"]
)
DLQ_DEPTH = Gauge(
    "shop_dlq_depth", "Messages in a dead-letter queue at the last sample.", ["queue"]
)

Probe = Callable[[], Awaitable[object]]


async def queue_depths(
    connection: AbstractRobustConnection, names: Sequence[str]
) -> dict[str, int]:
    """Ready-message counts of existing queues (passive declares on a throwaway channel)."""
    channel = await connection.channel()
    try:
        depths: dict[str, int] = {}
        for name in names:
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = int(queue.declaration_result.message_count or 0)
        return depths
    finally:
        if not channel.is_closed:
            await channel.close()


class DepthSampler:
    """Every interval: set QUEUE_DEPTH/DLQ_DEPTH for the specs and run the extra probes.

    Extra probes are other gauges worth refreshing on the same beat (an outbox relay's
    `measure_lag`). A failed sample is logged and tried again next time; it never stops the loop.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        specs: Sequence[QueueSpec],
        *,
        interval: float,
        probes: Sequence[Probe] = (),
    ) -> None:
        self._connection = connection
        self._specs = tuple(specs)
        self._interval = interval
        self._probes = tuple(probes)
        self._task: asyncio.Task[None] | None = None

    async def sample_once(self) -> dict[str, int]:
        """Sample now; returns the depths by queue name (work queues and DLQs)."""
        for probe in self._probes:
            await probe()
        names = [name for spec in self._specs for name in (spec.name, spec.dlq)]
        depths = await queue_depths(self._connection, names)
        for spec in self._specs:
            QUEUE_DEPTH.labels(spec.name).set(depths[spec.name])
            DLQ_DEPTH.labels(spec.dlq).set(depths[spec.dlq])
        return depths

    def start(self) -> None:
        """Sample in a background task until stop()."""
        self._task = asyncio.create_task(self._run(), name="depth-sampler")

    async def stop(self) -> None:
        """Cancel the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except Exception as error:  # broker or database down: the gauges keep their last value
                log.warning("depth sample failed", error=repr(error))
            await asyncio.sleep(self._interval)
