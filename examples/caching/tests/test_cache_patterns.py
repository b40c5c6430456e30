"""@cached, event invalidation, write-through and serializers (shop_cache_examples)."""

from __future__ import annotations

from typing import Any

import pytest
from shop_cache_examples import (
    CacheInvalidator,
    InvalidationError,
    MsgpackSerializer,
    PickleSerializer,
    WriteThrough,
    cached,
    key_for,
)
from shop_common.cache import MISS, JsonSerializer, MultiLevelCache, RedisCache
from shop_common.messaging.events import UserChanged, new_event
from shop_testing.wait import eventually

from .conftest import COHERENCE_DEADLINE, MakeCache, Target

pytestmark = pytest.mark.infra


async def test_cached_function_keys_on_arguments_and_honours_per_call_ttl(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    calls: list[tuple[int, str]] = []

    @cached(cache, ttl=lambda user_id, fields="all": 5.0 if user_id == 1 else 50.0)
    async def load_user(user_id: int, fields: str = "all") -> dict[str, Any]:
        calls.append((user_id, fields))
        return {"id": user_id, "fields": fields}

    assert await load_user(1) == {"id": 1, "fields": "all"}
    assert await load_user(user_id=1, fields="all") == {"id": 1, "fields": "all"}  # same key
    assert await load_user(2, "name") == {"id": 2, "fields": "name"}
    assert calls == [(1, "all"), (2, "name")]
    key1, key2 = key_for(load_user, 1), key_for(load_user, 2, fields="name")
    assert key1.startswith(f"{__name__}.") and "load_user" in key1 and key1 != key2
    assert key_for(load_user, user_id=1) == key1
    ttl1, ttl2 = await cache.l2.remaining_ttl(key1), await cache.l2.remaining_ttl(key2)
    assert ttl1 is not None and ttl1 <= 5.0 and ttl2 is not None and 5.0 < ttl2 <= 50.0
    await cache.delete(key1)
    await load_user(1)
    assert calls[-1] == (1, "all") and len(calls) == 3


async def test_cached_method_leaves_self_out_and_finds_its_cache_by_name(
    make_cache: MakeCache,
) -> None:
    class UserRepository:
        def __init__(self, cache: MultiLevelCache) -> None:
            self.cache = cache
            self.calls = 0

        @cached("cache", ttl=30.0)
        async def get(self, user_id: int) -> dict[str, int] | None:
            self.calls += 1
            return None if user_id < 0 else {"id": user_id}

    shared = make_cache()
    first, second = UserRepository(shared), UserRepository(shared)
    assert await first.get(3) == {"id": 3}
    assert await second.get(3) == {"id": 3}  # other instance, same key: self is not in it
    assert await first.get(-1) is None and await first.get(-1) is None  # negative cached
    assert first.calls == 2 and second.calls == 0
    with pytest.raises(TypeError, match="coroutine function"):
        cached(shared)(lambda: 1)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="JSON-able"):
        await first.get(object())  # type: ignore[arg-type]


async def test_invalidator_maps_events_to_keys_and_patterns(
    make_cache: MakeCache, target: Target
) -> None:
    a, b = make_cache(target.new_client()), make_cache(target.new_client())
    await a.start()
    await b.start()
    invalidator = CacheInvalidator(
        a, {"user.updated": ["user:{user_id}", "orders:user:{user_id}:*"]}
    )
    await a.set("user:7", {"v": 1})
    await a.set("user:8", {"v": 1})
    for i in range(3):
        await a.set(f"orders:user:7:{i}", {"o": i})

    async def b_holds_it_in_l1() -> bool:
        return await b.get("user:7") == {"v": 1} and b.l1.get("user:7") == {"v": 1}

    await eventually(b_holds_it_in_l1, timeout=COHERENCE_DEADLINE, what="B fills its L1")
    event = new_event(
        "user.updated", UserChanged(user_id=7, email="a@example.com", name="A", roles=[])
    )
    assert await invalidator.handle_envelope(event) == ["user:7", "orders:user:7:*"]
    assert await a.l2.lookup("user:7") is MISS and await a.l2.lookup("orders:user:7:1") is MISS
    assert await a.get("user:8") == {"v": 1}

    async def b_evicted() -> bool:
        return b.l1.lookup("user:7") is MISS

    await eventually(b_evicted, timeout=COHERENCE_DEADLINE, what="B evicts user:7")
    assert await invalidator.handle("order.created", {"order_id": 1}) == []  # no rule: no-op
    with pytest.raises(InvalidationError, match="user_id"):
        await invalidator.handle("user.updated", {"id": 7})


async def test_write_through_stores_first_and_caches_only_what_was_stored(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    stored: dict[str, Any] = {}
    down = False

    async def store(key: str, value: dict[str, int]) -> None:
        if down:
            raise ConnectionError("db down")
        stored[key] = value

    async def remove(key: str) -> None:
        stored.pop(key, None)

    wt = WriteThrough(cache, store, remove, ttl=60.0)
    await wt.write("user:1", {"v": 1})
    assert stored["user:1"] == {"v": 1} and await cache.l2.get("user:1") == {"v": 1}
    down = True
    with pytest.raises(ConnectionError):
        await wt.write("user:1", {"v": 2})
    assert await cache.get("user:1") == {"v": 1}  # the cache never runs ahead of the store
    down = False
    await wt.delete("user:1")
    assert "user:1" not in stored and await cache.get("user:1") is None


async def test_serializers_round_trip_and_pickle_needs_opt_in(target: Target) -> None:
    value = {"id": 1, "tags": ["a", "b"], "price": 9.5, "none": None}
    for serializer in (JsonSerializer(), MsgpackSerializer(), PickleSerializer(allow_unsafe=True)):
        cache = RedisCache(target.client, f"{target.namespace}:s", serializer=serializer)
        await cache.set("k", value)
        assert await cache.get("k") == value
    with pytest.raises(ValueError, match="allow_unsafe"):
        PickleSerializer()
    with pytest.raises(ValueError, match="namespace"):
        RedisCache(target.client, "bad{tag}")
