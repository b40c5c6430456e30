"""Write-behind: coalescing, batch/interval flush, order and no loss through store failures."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from shop_common.cache import WRITE_BEHIND_RETRY, WriteBehind, WriteBehindError
from shop_testing.isolation import unique_name
from shop_testing.wait import eventually
from shop_testing.write_behind import FAST_RETRY, FlakyStore

from .conftest import MakeCache


async def test_writes_coalesce_per_key_and_flush_by_batch_size() -> None:
    store = FlakyStore()
    wb = WriteBehind(store, name=unique_name("wb"), batch_size=3, flush_interval=60.0)
    wb.start()
    await wb.write("a", 1)
    await wb.write("b", 1)
    await wb.write("a", 2)  # coalesced: one pending entry for a, now the newest
    assert wb.depth == 2 and store.batches == []
    await wb.write("c", 1)
    await eventually(lambda: store.batches)
    assert store.batches == [[("b", 1), ("a", 2), ("c", 1)]]
    await wb.stop()


async def test_interval_flushes_a_partial_batch_and_stop_flushes_the_rest() -> None:
    store = FlakyStore()
    wb = WriteBehind(store, name=unique_name("wb"), batch_size=100, flush_interval=0.05)
    wb.start()
    await wb.write("x", 1)
    await eventually(lambda: store.writes == [("x", 1)])
    slow = WriteBehind(store, name=unique_name("wb"), batch_size=100, flush_interval=3600.0)
    slow.start()
    for i in range(7):
        await slow.write(f"k{i}", i)
    await slow.stop()  # does not wait an hour: stop flushes now
    assert [k for k, _ in store.writes[1:]] == [f"k{i}" for i in range(7)]
    await wb.stop()


async def test_store_outage_loses_nothing_and_keeps_order() -> None:
    store = FlakyStore()
    name = unique_name("wb")
    wb = WriteBehind(
        store, name=name, batch_size=5, flush_interval=0.01, max_pending=1000, retry=FAST_RETRY
    )
    wb.start()
    store.failing = True
    for i in range(40):  # values per key only ever grow: a reordering would show
        await wb.write(f"k{i % 10}", i)
    await eventually(lambda: store.attempts >= 3)
    depth = REGISTRY.get_sample_value("cache_write_behind_depth", {"cache": name})
    assert depth is not None and depth >= 10
    for i in range(40, 60):
        await wb.write(f"k{i % 10}", i)
    store.failing = False
    await wb.stop()
    assert store.state == {f"k{j}": 50 + j for j in range(10)}
    last: dict[str, int] = {}
    for key, value in store.writes:
        assert isinstance(value, int) and value > last.get(key, -1), "a write was overtaken"
        last[key] = value
    assert wb.depth == 0
    assert REGISTRY.get_sample_value("cache_write_behind_depth", {"cache": name}) == 0


async def test_full_queue_applies_backpressure() -> None:
    store = FlakyStore()
    store.failing = True
    wb = WriteBehind(
        store, name=unique_name("wb"), batch_size=2, flush_interval=0.01, max_pending=4
    )
    wb.start()
    for i in range(6):  # 2 go in flight (failing), 4 fill the queue
        await wb.write(f"k{i}", i)
    await eventually(lambda: len(wb.in_flight) == 2 and len(wb.pending) == 4)
    blocked = asyncio.create_task(wb.write("k-late", 99))
    # The flusher tries the store again (and fails) while the late write still waits for room.
    attempts = store.attempts
    await eventually(lambda: store.attempts > attempts, what="another failed flush")
    assert not blocked.done()  # waits for room instead of growing without bound
    await wb.write("k3", 33)  # an already queued key can always be updated in place
    store.failing = False
    # The flusher retries at least every retry.max_backoff; its next try succeeds and makes room.
    await asyncio.wait_for(blocked, 5 * wb.retry.max_backoff)
    await wb.stop()
    assert store.state["k-late"] == 99 and store.state["k3"] == 33


async def test_stop_gives_up_after_grace_keeping_the_writes() -> None:
    store = FlakyStore()
    store.failing = True
    wb = WriteBehind(store, name=unique_name("wb"), batch_size=10, flush_interval=0.01)
    wb.start()
    await wb.write("k", 1)
    with pytest.raises(WriteBehindError, match="1 writes not flushed"):
        await wb.stop(grace=0.2)
    assert wb.in_flight == [("k", 1)] or wb.pending == {"k": 1}
    with pytest.raises(ValueError, match="batch_size"):
        WriteBehind(store, batch_size=0)


@pytest.mark.infra
async def test_write_behind_updates_the_cache_at_once(make_cache: MakeCache) -> None:
    store = FlakyStore()
    cache = make_cache()
    wb = WriteBehind(store, cache, name=unique_name("wb"), batch_size=10, flush_interval=3600.0)
    wb.start()
    await wb.write("user:1", {"name": "Ada"})
    assert await cache.get("user:1") == {"name": "Ada"} and store.writes == []
    await wb.stop()
    assert store.writes == [("user:1", {"name": "Ada"})]


def test_a_retry_policy_that_could_give_up_on_a_batch_is_refused() -> None:
    for policy in (
        replace(WRITE_BEHIND_RETRY, max_attempts=5),
        replace(WRITE_BEHIND_RETRY, max_elapsed=60.0),
    ):
        with pytest.raises(ValueError, match="until the store answers"):
            WriteBehind(FlakyStore(), name=unique_name("wb"), retry=policy)
