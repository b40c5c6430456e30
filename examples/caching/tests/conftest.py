"""Cache example tests run against a single Redis and a Redis Cluster (the `target` fixture).

The fixtures and helpers live in shop_testing.cache_targets (shared with the other cache suite);
importing them here registers the fixtures and keeps `from .conftest import Target` working."""

from __future__ import annotations

from shop_testing.cache_targets import (
    COHERENCE_DEADLINE,
    L1_TTL,
    FakeClock,
    MakeCache,
    Target,
    cluster_target,
    make_cache,
    target,
)

__all__ = (
    "COHERENCE_DEADLINE",
    "L1_TTL",
    "FakeClock",
    "MakeCache",
    "Target",
    "cluster_target",
    "make_cache",
    "target",
)
