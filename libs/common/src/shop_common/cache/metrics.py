"""Prometheus metrics shared by every cache (one family per measure, a `cache` label)."""

from __future__ import annotations

from prometheus_client import Counter

from shop_common.observability.propagation import span_event

CACHE_HITS = Counter("cache_hits_total", "Cache hits by level (l1, l2).", ["cache", "level"])
CACHE_MISSES = Counter("cache_misses_total", "Cache misses by level (l1, l2).", ["cache", "level"])
CACHE_LOADS = Counter(
    "cache_loads_total", "Loader calls by outcome (value, none, error).", ["cache", "outcome"]
)
CACHE_STAMPEDE_WAITS = Counter(
    "cache_stampede_waits_total",
    "Callers that waited for another caller's load (scope: process, redis).",
    ["cache", "scope"],
)
CACHE_EVICTIONS = Counter(
    "cache_evictions_total",
    "Entries dropped from a memory cache (reason: size, expired, invalidated).",
    ["cache", "reason"],
)
CACHE_ERRORS = Counter(
    "cache_errors_total", "Cache backend errors swallowed by operation.", ["cache", "operation"]
)


class Lookups:
    """A hit or miss counter of one cache and level that also marks the current span (a
    `cache.hit` / `cache.miss` event when it records; nothing more when it does not)."""

    __slots__ = ("_attributes", "_counter", "_event")

    def __init__(self, counter: Counter, event: str, cache: str, level: str) -> None:
        self._counter = counter.labels(cache, level)
        self._event = event
        self._attributes = {"cache.name": cache, "cache.level": level}

    def inc(self) -> None:
        """Count one lookup."""
        self._counter.inc()
        span_event(self._event, self._attributes)


def lookup_counters(cache: str) -> tuple[Lookups, Lookups, Lookups, Lookups]:
    """(l1 hits, l2 hits, l1 misses, l2 misses) of a cache."""
    return (
        Lookups(CACHE_HITS, "cache.hit", cache, "l1"),
        Lookups(CACHE_HITS, "cache.hit", cache, "l2"),
        Lookups(CACHE_MISSES, "cache.miss", cache, "l1"),
        Lookups(CACHE_MISSES, "cache.miss", cache, "l2"),
    )
