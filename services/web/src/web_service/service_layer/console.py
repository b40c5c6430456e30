"""The console feed: a scrape round every interval while at least one admin watches, the
last minute's history, and a snapshot for each watcher (the latest one only: a slow watcher
skips rounds, it never makes the feed wait)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from shop_common.logging import get_logger

from web_service.domain.console import History, counters, snapshot
from web_service.service_layer.ports import MetricsSource

log = get_logger(__name__)


class ConsoleFeed:
    """`async for snap in feed.watch()`: a snapshot per round; `await feed.round()`: one now."""

    def __init__(
        self,
        source: MetricsSource,
        *,
        interval: float,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        trace: Callable[[], dict[str, Any] | None] = lambda: None,
    ) -> None:
        self._source = source
        self._trace = trace
        self._interval = interval
        self._history = History(window_seconds)
        self._clock = clock
        self._watchers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def round(self) -> dict[str, Any]:
        """Scrape every instance once and return the snapshot (also sent to the watchers)."""
        async with self._lock:
            scrapes = await self._source.scrape()
            at = self._clock()
            self._history.add(at, counters(scrapes))
            snap = snapshot(scrapes, self._history, at)
            snap["trace"] = self._trace()  # the last order's waterfall, when traces come here
        for queue in self._watchers:
            if queue.full():
                queue.get_nowait()  # drop the stale one: only the latest matters
            queue.put_nowait(snap)
        return snap

    async def _run(self) -> None:
        while self._watchers:
            try:
                await self.round()
            except Exception:  # a round that failed must not end the feed
                log.exception("console_round_failed")
            await asyncio.sleep(self._interval)

    async def watch(self) -> AsyncIterator[dict[str, Any]]:
        """Snapshots until the caller stops iterating."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        self._watchers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="console-feed")
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)

    async def stop(self) -> None:
        """Stop the round loop (the watchers' streams end with the server)."""
        self._watchers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
