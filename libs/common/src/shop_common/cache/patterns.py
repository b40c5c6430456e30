"""Refresh-ahead on top of MultiLevelCache (the order service's user lookup uses it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shop_common.cache.memory import MemoryCache
from shop_common.cache.multilevel import MultiLevelCache

__all__ = ["RefreshAhead"]


class RefreshAhead:
    """Reload an entry in the background once `refresh_after` of its TTL has passed.

    Callers keep getting the (slightly stale) cached value meanwhile; one refresh per key runs
    at a time (per process, and across processes through the cache's Redis lock). Entries
    loaded by another process get their refresh time from L2's remaining TTL.
    """

    def __init__(
        self,
        cache: MultiLevelCache,
        ttl: float,
        refresh_after: float = 0.75,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        if ttl <= 0 or not 0 < refresh_after < 1:
            raise ValueError("ttl must be > 0 and refresh_after in (0, 1)")
        self.cache = cache
        self.ttl = ttl
        self.refresh_after = refresh_after
        self._clock = clock
        self._due = MemoryCache(max_tracked, default_ttl=ttl, clock=clock, name="refresh-ahead")
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def get(self, key: str, loader: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value (loading it on a miss), refreshed in the background when due."""

        async def load() -> Any:
            value = await loader()
            self._due.set(key, self._clock() + self.refresh_after * self.ttl)
            return value

        value = await self.cache.get_or_load(key, load, self.ttl)
        due = self._due.get(key)
        if due is None:  # loaded elsewhere: work its age out from L2's remaining TTL
            try:
                remaining = await self.cache.l2.remaining_ttl(key)
            except Exception:
                remaining = None
            left = self.ttl if remaining is None else remaining
            due = self._clock() + max(0.0, left - (1 - self.refresh_after) * self.ttl)
            self._due.set(key, due)
        if self._clock() >= due and key not in self._tasks:
            task = asyncio.create_task(self._refresh(key, load))
            self._tasks[key] = task
            task.add_done_callback(lambda _: self._tasks.pop(key, None))
        return value

    async def _refresh(self, key: str, load: Callable[[], Awaitable[Any]]) -> None:
        try:
            if not await self.cache.refresh(key, load, self.ttl):
                self._due.delete(key)  # someone else refreshes: re-read its age next time
        except Exception as exc:
            self.cache.count_error("refresh", exc)
            self._due.delete(key)

    async def wait_idle(self) -> None:
        """Wait for the refreshes running now (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
