"""Stampede protection: one load per key in a process, one across processes, safe unlock."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from shop_testing.wait import eventually

from .conftest import MakeCache, Target

pytestmark = pytest.mark.infra
WORKER = Path(__file__).with_name("stampede_worker.py")
LOCK_TTL, LOCK_WAIT = 60.0, 30.0  # for tests that hold a lock while another caller waits


def waits(cache_name: str, scope: str) -> float:
    value = REGISTRY.get_sample_value(
        "cache_stampede_waits_total", {"cache": cache_name, "scope": scope}
    )
    return value or 0.0


async def test_500_concurrent_misses_call_the_loader_once(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = 0
    release = asyncio.Event()

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"id": 1}

    before = waits(cache.name, "process")
    tasks = [asyncio.create_task(cache.get_or_load("user:1", loader)) for _ in range(500)]
    await eventually(lambda: calls > 0, interval=0.001, what="the loader started")
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert results == [{"id": 1}] * 500
    assert waits(cache.name, "process") - before == 499
    assert await cache.l2.get("user:1") == {"id": 1}


async def test_two_processes_load_once_overall(make_cache: MakeCache, target: Target) -> None:
    # The holder keeps the lock until it sees the other process waiting; with the default
    # lock_wait (5 s) a stall that long on a loaded machine made the waiter load too.
    cache = make_cache(coherence=False, lock_ttl=LOCK_TTL, lock_wait=LOCK_WAIT)
    redis_waits_before = waits(cache.name, "redis")
    counter, go = f"{target.namespace}:c:calls", f"{target.namespace}:c:go"
    waiting_here, waiting_there = f"{counter}:waiting:test", f"{counter}:waiting:worker"
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        target.kind,
        target.url,
        cache.l2.namespace,
        "user:9",
        counter,
        go,
        "50",
        str(LOCK_TTL),
        str(LOCK_WAIT),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        assert (await asyncio.wait_for(worker.stdout.readline(), 30)).strip() == b"ready"

        async def loader() -> dict[str, str]:
            await target.client.incr(counter)
            # Hold the lock until the worker is seen waiting on it: an observed overlap, not a
            # sleep. Bounded (30 s), so a lock that does not hold fails the asserts below.
            for _ in range(6000):
                if await target.client.exists(waiting_there):
                    break
                await asyncio.sleep(0.005)
            return {"by": "test"}

        async def signal_waiting() -> None:
            """Tell the worker, through Redis, once a call here waits on its lock."""
            while waits(cache.name, "redis") == redis_waits_before:
                await asyncio.sleep(0.002)
            await target.client.set(waiting_here, 1, ex=60)

        await target.client.set(go, 1, ex=60)
        watcher = asyncio.create_task(signal_waiting())
        mine = await asyncio.gather(*(cache.get_or_load("user:9", loader) for _ in range(50)))
        watcher.cancel()
        out, _ = await asyncio.wait_for(worker.communicate(), 30)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert worker.returncode == 0
    assert int(await target.client.get(counter) or 0) == 1
    theirs = json.loads(out)
    # Whoever loaded, both processes got that one value, and the loads overlapped: one
    # process waited on the other's Redis lock.
    by = {m["by"] for m in mine if m is not None}
    assert len(by) == 1 and theirs["by"] == sorted(by)
    assert theirs["waits"] + waits(cache.name, "redis") - redis_waits_before >= 1
    await target.client.delete(counter, go, waiting_here, waiting_there)


async def test_loader_failure_reaches_every_waiter_and_releases_the_lock(
    make_cache: MakeCache, target: Target
) -> None:
    cache = make_cache()
    calls = 0

    async def failing() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("source of truth failed")

    results = await asyncio.gather(
        *(cache.get_or_load("user:3", failing) for _ in range(100)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, RuntimeError) and "source of truth" in str(r) for r in results)
    assert await target.client.exists(cache.l2.lock_key("user:3")) == 0

    async def works() -> dict[str, int]:
        return {"ok": 1}

    # No leftover lock: the next load takes it at once instead of waiting lock_wait for it
    # (a count of waits, not a stopwatch: a 3 s bound against the 5 s lock_wait was a race).
    redis_waits = waits(cache.name, "redis")
    assert await cache.get_or_load("user:3", works) == {"ok": 1}
    assert waits(cache.name, "redis") == redis_waits


async def test_a_waiter_in_another_process_gets_the_value_the_lock_holder_stored(
    make_cache: MakeCache,
) -> None:
    # lock_ttl and lock_wait far above the default 10 s / 5 s: a stall that long between the
    # waiter starting to wait and the holder storing would make the waiter load (calls == 1).
    holder = make_cache(coherence=False, lock_ttl=LOCK_TTL)
    waiter = make_cache(coherence=False, lock_wait=LOCK_WAIT)
    token = await holder.lock.acquire("user:5")
    assert token is not None
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"from": "waiter"}

    before = waits(waiter.name, "redis")
    pending = asyncio.create_task(waiter.get_or_load("user:5", loader))
    await eventually(
        lambda: waits(waiter.name, "redis") > before, interval=0.002, what="the waiter waiting"
    )
    assert not pending.done()  # waiting on the lock instead of loading
    await holder.lock.store_and_release("user:5", {"from": "holder"}, 30.0, token)
    # It returns within LOCK_WAIT either way (after that it loads itself: calls == 1).
    assert await pending == {"from": "holder"} and calls == 0
    assert not await holder.lock.release("user:5", token)  # already released: compare-and-delete
