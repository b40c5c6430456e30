"""In-process LRU cache with a size bound and a per-entry TTL that is really enforced."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from shop_common.cache.base import MISS, NEGATIVE
from shop_common.cache.metrics import CACHE_EVICTIONS

__all__ = ["MemoryCache"]


class MemoryCache:
    """LRU over an OrderedDict: every operation is O(1); expiry is checked on every read.

    Entries live at most `ttl` seconds on the injected monotonic clock (tests advance a fake
    clock instead of sleeping); past `max_entries` the least recently used entry goes.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        default_ttl: float | None = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "memory",
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        if default_ttl is not None and default_ttl <= 0:
            raise ValueError("default_ttl must be > 0 or None (no expiry)")
        self.max_entries = max_entries
        self.default_ttl = default_ttl
        self.name = name
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()
        self._m_size = CACHE_EVICTIONS.labels(name, "size")
        self._m_expired = CACHE_EVICTIONS.labels(name, "expired")

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return self.lookup(key) is not MISS

    def lookup(self, key: Hashable) -> Any:
        """The value, NEGATIVE for a cached "not found", or MISS; a hit becomes most recent."""
        entry = self._data.get(key)
        if entry is None:
            return MISS
        if entry[1] <= self._clock():
            del self._data[key]
            self._m_expired.inc()
            return MISS
        self._data.move_to_end(key)
        return entry[0]

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The cached value, or default on a miss or a cached "not found"."""
        value = self.lookup(key)
        return default if value is MISS or value is NEGATIVE else value

    def remaining_ttl(self, key: Hashable) -> float | None:
        """Seconds the entry still lives (inf without expiry), None when absent or expired."""
        entry = self._data.get(key)
        if entry is None:
            return None
        left = entry[1] - self._clock()
        return left if left > 0 else None

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        """Store value for ttl seconds (default_ttl when None; math.inf for no expiry)."""
        ttl = self.default_ttl if ttl is None else ttl
        if ttl is not None and ttl <= 0:
            self.delete(key)
            return
        expires_at = math.inf if ttl is None else self._clock() + ttl
        data = self._data
        if key in data:
            data.move_to_end(key)
        elif len(data) >= self.max_entries:
            data.popitem(last=False)
            self._m_size.inc()
        data[key] = (value, expires_at)

    def set_negative(self, key: Hashable, ttl: float) -> None:
        """Remember that key has no value, for ttl seconds."""
        self.set(key, NEGATIVE, ttl)

    def delete(self, key: Hashable) -> bool:
        """Drop key; True when it was there."""
        return self._data.pop(key, None) is not None

    def clear(self) -> None:
        """Drop every entry."""
        self._data.clear()

    def purge_expired(self) -> int:
        """Drop every expired entry now (reads do it lazily); return how many."""
        now = self._clock()
        dead = [key for key, (_, expires_at) in self._data.items() if expires_at <= now]
        for key in dead:
            del self._data[key]
        self._m_expired.inc(len(dead))
        return len(dead)
