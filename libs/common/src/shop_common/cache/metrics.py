"""Prometheus metrics shared by every cache (one family per measure, a `cache` label)."""

from __future__ import annotations

from prometheus_client import Counter

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
