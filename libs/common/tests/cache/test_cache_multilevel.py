"""MultiLevelCache: read-through with backfill at L2's remaining TTL, writes, coherence."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from shop_common.cache import MISS, NEGATIVE
from shop_testing.wait import eventually

from .conftest import COHERENCE_DEADLINE, FakeClock, MakeCache, Target

pytestmark = pytest.mark.infra


async def test_read_through_backfills_l1_with_l2_remaining_ttl(
    make_cache: MakeCache, target: Target
) -> None:
    clock = FakeClock()
    cache = make_cache(l1_ttl=None, clock=clock)
    await cache.l2.set("user:1", {"name": "Ada"}, ttl=100.0)
    assert cache.l1.lookup("user:1") is MISS
    assert await cache.get("user:1") == {"name": "Ada"}
    remaining = cache.l1.remaining_ttl("user:1")
    assert remaining is not None and 99.0 < remaining <= 100.0
    # The L1 TTL still caps what L2 would allow.
    short = make_cache(l1_ttl=5.0, clock=clock)
    assert await short.get("user:1") == {"name": "Ada"}
    assert short.l1.remaining_ttl("user:1") == pytest.approx(5.0)


async def test_set_and_delete_reach_both_levels(make_cache: MakeCache) -> None:
    cache = make_cache()
    await cache.set("k", {"v": 1}, ttl=50.0)
    assert cache.l1.get("k") == {"v": 1}
    assert await cache.l2.get("k") == {"v": 1}
    remaining = await cache.l2.remaining_ttl("k")
    assert remaining is not None and 49.0 < remaining <= 50.0
    await cache.delete("k")
    assert cache.l1.lookup("k") is MISS and await cache.l2.lookup("k") is MISS
    assert await cache.get("k", "absent") == "absent"


async def test_set_on_one_instance_evicts_the_others_l1(
    make_cache: MakeCache, target: Target
) -> None:
    a = make_cache(target.new_client())
    b = make_cache(target.new_client())
    await a.start()
    await b.start()
    await a.set("user:7", {"v": 1})

    async def b_holds_it_in_l1() -> bool:
        # A read that overlaps A's own invalidation message does not fill L1; the next one does.
        return await b.get("user:7") == {"v": 1} and b.l1.get("user:7") == {"v": 1}

    await eventually(b_holds_it_in_l1)  # B now holds it in L1 for 60 s

    await a.set("user:7", {"v": 2})

    async def b_sees_new_value() -> bool:
        return await b.get("user:7") == {"v": 2}

    # pub/sub delivery, not the 60 s L1 TTL
    await eventually(b_sees_new_value, timeout=COHERENCE_DEADLINE, what="B sees v2")
    await a.delete("user:7")

    async def b_sees_deletion() -> bool:
        return await b.get("user:7") is None

    await eventually(b_sees_deletion, timeout=COHERENCE_DEADLINE, what="B sees the delete")


async def test_pattern_invalidation_clears_l2_and_every_l1(
    make_cache: MakeCache, target: Target
) -> None:
    a = make_cache(target.new_client())
    b = make_cache(target.new_client())
    await a.start()
    await b.start()
    for i in range(30):
        await a.set(f"user:{i}", {"i": i})
    await a.set("order:1", {"o": 1})

    async def b_holds_it_in_l1() -> bool:
        return await b.get("user:3") == {"i": 3} and b.l1.get("user:3") == {"i": 3}

    await eventually(b_holds_it_in_l1)
    assert await a.invalidate_pattern("user:*") == 30
    assert await a.l2.lookup("user:3") is MISS and await a.get("order:1") == {"o": 1}

    async def b_flushed() -> bool:
        return b.l1.lookup("user:3") is MISS

    await eventually(b_flushed, timeout=COHERENCE_DEADLINE, what="B's L1 flushed")
    assert await b.get("user:3") is None


async def test_negative_result_is_cached_with_its_own_ttl(make_cache: MakeCache) -> None:
    cache = make_cache(negative_ttl=7.0)
    calls = 0

    async def missing() -> dict[str, int] | None:
        nonlocal calls
        calls += 1
        return None

    assert await cache.get_or_load("user:404", missing) is None
    assert await cache.get_or_load("user:404", missing) is None
    cache.l1.clear()
    assert await cache.get_or_load("user:404", missing) is None  # from L2's negative entry
    assert calls == 1
    assert await cache.l2.lookup("user:404") is NEGATIVE
    remaining = await cache.l2.remaining_ttl("user:404")
    assert remaining is not None and remaining <= 7.0
    assert await cache.get_or_load("user:405", missing, negative_ttl=1.0) is None
    remaining = await cache.l2.remaining_ttl("user:405")
    assert remaining is not None and remaining <= 1.0


async def test_read_overlapping_an_invalidation_does_not_park_the_old_value_in_l1(
    make_cache: MakeCache, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_cache(target.new_client())
    b = make_cache(target.new_client())
    await a.start()
    await b.start()
    await a.set("user:1", {"v": "old"})
    read_l2 = b.l2.lookup_with_ttl

    async def read_then_lose_the_race(key: str) -> tuple[object, float | None]:
        found = await read_l2(key)  # B has read the old value from Redis...
        before = b.generation
        await a.set(key, {"v": "new"})  # ...when A's write and its invalidation land

        async def b_got_the_message() -> bool:
            return b.generation > before

        await eventually(b_got_the_message)
        return found

    monkeypatch.setattr(b.l2, "lookup_with_ttl", read_then_lose_the_race)
    assert await b.get("user:1") == {"v": "old"}  # what it read, once
    assert b.l1.lookup("user:1") is MISS  # but not kept for the L1 TTL
    monkeypatch.setattr(b.l2, "lookup_with_ttl", read_l2)
    assert await b.get("user:1") == {"v": "new"}


async def test_hits_and_misses_are_counted_per_level(make_cache: MakeCache) -> None:
    cache = make_cache()

    def count(metric: str, level: str) -> float:
        labels = {"cache": cache.name, "level": level}
        return REGISTRY.get_sample_value(f"cache_{metric}_total", labels) or 0.0

    before = {(m, lv): count(m, lv) for m in ("hits", "misses") for lv in ("l1", "l2")}
    await cache.l2.set("k", {"v": 1})
    await cache.get("k")  # L1 miss, L2 hit
    await cache.get("k")  # L1 hit
    await cache.get("absent")  # misses both
    after = {key: count(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("hits", "l1"): 1,
        ("hits", "l2"): 1,
        ("misses", "l1"): 2,
        ("misses", "l2"): 1,
    }
