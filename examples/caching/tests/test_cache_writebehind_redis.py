"""RedisWriteBehind: the write-behind queue in Redis (single and Cluster) survives a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from shop_cache_examples import RedisWriteBehind
from shop_common.cache import RedisClient
from shop_testing.wait import eventually
from shop_testing.write_behind import FAST_RETRY, FlakyStore

from .conftest import Target

pytestmark = pytest.mark.infra
Make = Callable[..., RedisWriteBehind]


@pytest_asyncio.fixture
async def make(target: Target) -> AsyncIterator[Make]:
    made: list[RedisWriteBehind] = []

    def factory(
        store: FlakyStore, client: RedisClient | None = None, **options: object
    ) -> RedisWriteBehind:
        wb = RedisWriteBehind(
            client or target.client,
            "wb",
            store,
            prefix=target.namespace,
            **options,  # type: ignore[arg-type]
        )
        made.append(wb)
        return wb

    yield factory
    for wb in made:
        if wb._task is not None:
            wb._task.cancel()
    for key in made[0].keys if made else []:
        await target.client.delete(key)


async def test_writes_coalesce_and_flush_in_order_on_stop(make: Make) -> None:
    store = FlakyStore()
    wb = make(store, batch_size=100, flush_interval=3600.0)
    wb.start()
    for key, value in (("a", 1), ("b", 1), ("a", 2), ("c", 1)):
        await wb.write(key, value)
    assert await wb.depth() == 3
    await wb.stop()
    assert store.writes == [("b", 1), ("a", 2), ("c", 1)] and await wb.depth() == 0


async def test_store_outage_loses_nothing_and_keeps_order(make: Make) -> None:
    store = FlakyStore()
    store.failing = True
    wb = make(store, batch_size=5, flush_interval=0.01, retry=FAST_RETRY)
    wb.start()
    for i in range(60):
        await wb.write(f"k{i % 10}", i)
    await eventually(lambda: store.attempts >= 3)
    store.failing = False
    await wb.stop()
    assert store.state == {f"k{j}": 50 + j for j in range(10)}
    last: dict[str, int] = {}
    for key, value in store.writes:
        assert isinstance(value, int) and value > last.get(key, -1), "a write was overtaken"
        last[key] = value


async def test_a_restarted_writer_flushes_what_a_crashed_one_left(
    make: Make, target: Target
) -> None:
    store = FlakyStore()
    store.failing = True
    # The crashed writer has its own connections, as another process would.
    crashed = make(store, target.new_client(), batch_size=3, flush_interval=0.01, retry=FAST_RETRY)
    crashed.start()
    for i in range(7):
        await crashed.write(f"k{i}", {"i": i})
    await eventually(lambda: store.attempts >= 1)  # a batch is in flight, unconfirmed
    assert crashed._task is not None
    crashed._task.cancel()  # the process dies: no stop(), no flush
    with pytest.raises(asyncio.CancelledError):
        await crashed._task
    assert await crashed.depth() == 7

    store.failing = False
    restarted = make(store, batch_size=3, flush_interval=0.01)
    restarted.start()
    await restarted.stop()
    assert store.state == {f"k{i}": {"i": i} for i in range(7)}
    assert [k for k, _ in store.writes] == [f"k{i}" for i in range(7)]
    assert await restarted.depth() == 0


async def test_full_queue_applies_backpressure(make: Make) -> None:
    store = FlakyStore()
    store.failing = True
    # A long interval: only a full batch (k0, k1) starts a flush, so k2..k5 fill the queue.
    wb = make(store, batch_size=2, flush_interval=3600.0, max_pending=4, retry=FAST_RETRY)
    wb.start()
    await wb.write("k0", 0)
    await wb.write("k1", 1)
    await eventually(lambda: store.attempts >= 1)  # k0, k1 in flight (failing)
    for i in range(2, 6):  # 4 fill the queue
        await wb.write(f"k{i}", i)
    blocked = asyncio.create_task(wb.write("k-late", 99))
    # The flusher tries the store again (and fails) while the late write still waits for room.
    attempts = store.attempts
    await eventually(lambda: store.attempts > attempts, what="another failed flush")
    assert not blocked.done()
    store.failing = False
    # The flusher retries at least every retry.max_backoff; its next try succeeds and makes room.
    await asyncio.wait_for(blocked, 5 * wb.retry.max_backoff)
    await wb.stop()
    assert store.state["k-late"] == 99 and len(store.state) == 7
