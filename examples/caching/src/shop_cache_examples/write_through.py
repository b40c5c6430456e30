"""Write-through on top of a LayeredCache (moved out of shop_common.cache.patterns)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from shop_common.cache import LayeredCache

__all__ = ["WriteThrough"]

V = TypeVar("V")


class WriteThrough(Generic[V]):
    """Writes go to the source of truth first, then to the cache; a failed store changes nothing.

    Readers never see a cached value the store does not have.
    """

    def __init__(
        self,
        cache: LayeredCache,
        store: Callable[[str, V], Awaitable[None]],
        remove: Callable[[str], Awaitable[None]] | None = None,
        ttl: float | None = None,
    ) -> None:
        self.cache = cache
        self.store = store
        self.remove = remove
        self.ttl = ttl

    async def write(self, key: str, value: V) -> None:
        """Store, then cache (every instance's L1 is told)."""
        await self.store(key, value)
        await self.cache.set(key, value, self.ttl)

    async def delete(self, key: str) -> None:
        """Remove from the store (if a remover is set), then from the cache."""
        if self.remove is not None:
            await self.remove(key)
        await self.cache.delete(key)
