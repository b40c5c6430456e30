"""Write-behind: the cache takes the write now, the source of truth gets it in batches later.

The catalog service counts product views with it (catalog_service.adapters.views).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Gauge

from shop_common.cache.levels import LayeredCache
from shop_common.cache.metrics import CACHE_ERRORS
from shop_common.logging import get_logger
from shop_common.resilience.retry import RetryPolicy, any_exception, retry_call

__all__ = ["WRITE_BEHIND_RETRY", "WriteBehind", "WriteBehindError"]

_log = get_logger(__name__)
CACHE_WRITE_BEHIND_DEPTH = Gauge(
    "cache_write_behind_depth",
    "Writes queued for the backing store (coalesced per key).",
    ["cache"],
)
Batch = list[tuple[str, Any]]

# A batch is retried until the store takes it (no write may be lost): no limit on attempts.
WRITE_BEHIND_RETRY = RetryPolicy(
    max_attempts=None, initial_backoff=0.05, max_backoff=2.0, jitter=0.0, retry_on=any_exception
)


def check_write_behind_retry(policy: RetryPolicy) -> RetryPolicy:
    """A write-behind's policy must never give up on a batch; ValueError if it would."""
    if policy.gives_up:
        raise ValueError("a write-behind retries until the store answers: no attempt or time limit")
    return policy


class WriteBehindError(RuntimeError):
    """stop() ran out of time with writes still unflushed (they are kept in `pending`)."""


async def finish_flusher(task: asyncio.Task[None], grace: float | None) -> bool:
    """Wait up to grace s for a flusher that was told to stop; cancel it and say False if late."""
    try:
        async with asyncio.timeout(grace):
            await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    return True


class WriteBehind:
    """Coalesce writes per key and flush them to `store(batch)` by batch size or interval.

    Order: a batch holds the keys in the order of their latest write; a batch that fails is
    retried as it is (policy `retry`, WRITE_BEHIND_RETRY by default) before any later write is
    sent, so no write is lost or overtaken. The queue is bounded: `write` waits (backpressure) while `max_pending` distinct
    keys are queued. Queue depth is the `cache_write_behind_depth` gauge.
    """

    def __init__(
        self,
        store: Callable[[Batch], Awaitable[None]],
        cache: LayeredCache | None = None,
        *,
        name: str = "write-behind",
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_pending: int = 10_000,
        retry: RetryPolicy = WRITE_BEHIND_RETRY,
    ) -> None:
        if batch_size < 1 or max_pending < batch_size or flush_interval <= 0:
            raise ValueError("need batch_size >= 1, max_pending >= batch_size, flush_interval > 0")
        self.store = store
        self.cache = cache
        self.name = name
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.retry = check_write_behind_retry(retry)
        self.pending: OrderedDict[str, Any] = OrderedDict()
        self.in_flight: Batch = []
        self.flushed = 0
        self._changed = asyncio.Condition()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._m_depth = CACHE_WRITE_BEHIND_DEPTH.labels(name)
        self._m_errors = CACHE_ERRORS.labels(name, "write_behind_flush")

    @property
    def depth(self) -> int:
        """Writes not yet confirmed by the store (queued + in the batch being flushed)."""
        return len(self.pending) + len(self.in_flight)

    def start(self) -> None:
        """Start the flusher task."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"write-behind:{self.name}")

    async def write(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Cache value now and queue it for the store (waits while the queue is full)."""
        if self._stopping:
            raise WriteBehindError(f"{self.name} is stopping; write refused")
        if self.cache is not None:
            await self.cache.set(key, value, ttl)
        async with self._changed:
            await self._changed.wait_for(
                lambda: key in self.pending or len(self.pending) < self.max_pending
            )
            self.pending[key] = value
            self.pending.move_to_end(key)
            self._m_depth.set(self.depth)
            if len(self.pending) >= self.batch_size:
                self._changed.notify_all()

    async def stop(self, grace: float | None = 30.0) -> None:
        """Flush everything queued, then stop; WriteBehindError if the store stays down."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        async with self._changed:
            self._changed.notify_all()
        self._task = None
        if not await finish_flusher(task, grace):
            raise WriteBehindError(f"{self.name}: {self.depth} writes not flushed")

    async def _run(self) -> None:
        while True:
            async with self._changed:
                deadline = time.monotonic() + self.flush_interval
                while not self._stopping and len(self.pending) < self.batch_size:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):  # not wait_for: see durable_writebehind
                            await self._changed.wait()
                if not self.pending:
                    if self._stopping:
                        return
                    continue
                size = min(self.batch_size, len(self.pending))
                self.in_flight = [self.pending.popitem(last=False) for _ in range(size)]
                self._changed.notify_all()  # room for writers
            await self._flush_in_flight()

    async def _flush_in_flight(self) -> None:
        await retry_call(self.retry, self._store_in_flight)
        self.flushed += len(self.in_flight)
        self.in_flight = []
        self._m_depth.set(self.depth)

    async def _store_in_flight(self) -> None:
        try:
            await self.store(list(self.in_flight))
        except Exception as exc:
            self._m_errors.inc()
            _log.warning("write_behind_flush_failed", name=self.name, error=repr(exc))
            raise
