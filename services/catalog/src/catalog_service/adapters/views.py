"""Product view counters, written behind to PostgreSQL (shop_common.cache.WriteBehind).

A view only bumps this process's running total of the sku and hands it to the WriteBehind,
which coalesces totals per sku and flushes batches every VIEW_FLUSH_INTERVAL_SECONDS (or
VIEW_FLUSH_BATCH skus): one upsert adds, per sku, what this process counted since its last
flush. A read is never slowed by a write; a flush that fails is retried, in order, until the
database takes it. What a counter tolerates: a crash loses the views counted since the last
flush (and a flush whose commit was lost in transit may be counted twice).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from shop_common.cache import WriteBehind
from shop_common.observability.propagation import untraced
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_UPSERT = text(
    "INSERT INTO product_views (sku, views)"
    " SELECT v.sku, v.n FROM unnest(CAST(:skus AS text[]), CAST(:ns AS bigint[])) AS v(sku, n)"
    " JOIN products p ON p.sku = v.sku"
    " ON CONFLICT (sku) DO UPDATE SET views = product_views.views + EXCLUDED.views"
)


class ViewCounter:
    """service_layer.ports.ViewCounter over a WriteBehind flushing to product_views."""

    def __init__(
        self, engine: AsyncEngine, *, flush_interval: float, batch_size: int, name: str
    ) -> None:
        self._engine = engine
        self._totals: Counter[str] = Counter()  # views counted by this process, per sku
        self._flushed: Counter[str] = Counter()  # of those, what the database has
        self.behind = WriteBehind(
            self._store,
            name=name,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_pending=max(10_000, batch_size),
        )

    def start(self) -> None:
        """Start the flusher (untraced: a flush is background work, not part of any request)."""
        with untraced():
            self.behind.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Flush what is queued, then stop."""
        with untraced():
            await self.behind.stop(grace)

    async def seen(self, sku: str) -> None:
        self._totals[sku] += 1
        await self.behind.write(sku, self._totals[sku])

    async def _store(self, batch: list[tuple[str, Any]]) -> None:
        deltas = {sku: int(total) - self._flushed[sku] for sku, total in batch}
        skus = [sku for sku, n in deltas.items() if n > 0]
        if skus:
            async with self._engine.begin() as conn:
                await conn.execute(_UPSERT, {"skus": skus, "ns": [deltas[s] for s in skus]})
        for sku, total in batch:
            self._flushed[sku] = int(total)
