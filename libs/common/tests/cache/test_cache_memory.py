"""MemoryCache: enforced TTL on a fake clock, LRU eviction, O(1) operations."""

from __future__ import annotations

import math

import pytest
from shop_common.cache import MISS, NEGATIVE, MemoryCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entry_expires_exactly_at_its_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=10, default_ttl=30.0, clock=clock)
    cache.set("a", {"v": 1})
    cache.set("b", {"v": 2}, ttl=5.0)
    clock.now += 4.999
    assert cache.get("b") == {"v": 2}
    clock.now += 0.001
    assert cache.lookup("b") is MISS
    assert cache.get("a") == {"v": 1}
    clock.now += 25.0
    assert cache.get("a") is None
    assert len(cache) == 0  # expired entries are removed, not just hidden


def test_remaining_ttl_counts_down_on_the_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(default_ttl=10.0, clock=clock)
    cache.set("k", 1)
    clock.now += 3.0
    assert cache.remaining_ttl("k") == pytest.approx(7.0)
    assert cache.remaining_ttl("absent") is None
    forever = MemoryCache(default_ttl=None, clock=clock)
    forever.set("k", 1)
    clock.now += 1e9
    assert forever.get("k") == 1 and forever.remaining_ttl("k") == math.inf


def test_least_recently_used_entry_is_evicted_at_the_bound() -> None:
    cache = MemoryCache(max_entries=3, default_ttl=None)
    for key in "abc":
        cache.set(key, key)
    assert cache.get("a") == "a"  # a becomes most recent; b is now the oldest
    cache.set("d", "d")
    assert cache.lookup("b") is MISS
    assert [cache.get(k) for k in "acd"] == ["a", "c", "d"]
    cache.set("c", "c2")  # an update refreshes recency without growing
    cache.set("e", "e")
    assert len(cache) == 3 and cache.lookup("a") is MISS and cache.get("c") == "c2"


def test_negative_entries_are_cached_but_read_as_none() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    cache.set_negative("gone", ttl=2.0)
    assert cache.lookup("gone") is NEGATIVE and cache.get("gone", "dflt") == "dflt"
    clock.now += 2.0
    assert cache.lookup("gone") is MISS


def test_delete_clear_purge_and_bad_arguments() -> None:
    clock = FakeClock()
    cache = MemoryCache(default_ttl=1.0, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2, ttl=100.0)
    assert cache.delete("a") and not cache.delete("a")
    cache.set("c", 3)
    clock.now += 1.0
    assert cache.purge_expired() == 1 and len(cache) == 1
    cache.set("b", 9, ttl=0)  # a non-positive ttl means "do not keep"
    assert "b" not in cache
    cache.set("x", 1)
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)
    with pytest.raises(ValueError, match="default_ttl"):
        MemoryCache(default_ttl=0)
