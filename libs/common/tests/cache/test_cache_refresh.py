"""Refresh-ahead (RefreshAhead), XFetch early refresh and a failed refresh (moved here from
test_cache_patterns.py when the patterns no service runs went to examples/caching/)."""

from __future__ import annotations

import asyncio

import pytest
from shop_common.cache import RefreshAhead
from shop_testing.wait import eventually

from .conftest import FakeClock, MakeCache, Target

pytestmark = pytest.mark.infra


async def test_refresh_ahead_refreshes_once_and_serves_stale_meanwhile(
    make_cache: MakeCache,
) -> None:
    clock = FakeClock()
    cache = make_cache()
    ahead = RefreshAhead(cache, ttl=10.0, refresh_after=0.5, clock=clock)
    calls = 0
    gate = asyncio.Event()

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()  # keep the refresh in flight while callers read
        return {"version": calls}

    assert await ahead.get("user:1", loader) == {"version": 1}
    clock.now += 4.0
    assert await ahead.get("user:1", loader) == {"version": 1} and calls == 1  # not due yet
    clock.now += 1.5
    stale = await asyncio.gather(*(ahead.get("user:1", loader) for _ in range(100)))
    assert stale == [{"version": 1}] * 100  # served at once; the refresh runs behind them

    async def refresh_running() -> bool:
        return calls == 2

    await eventually(refresh_running)
    stale = await asyncio.gather(*(ahead.get("user:1", loader) for _ in range(100)))
    assert stale == [{"version": 1}] * 100
    assert calls == 2  # one refresh for 200 callers
    gate.set()
    await ahead.wait_idle()
    assert await ahead.get("user:1", loader) == {"version": 2} and calls == 2
    remaining = await cache.l2.remaining_ttl("user:1")
    assert remaining is not None and remaining > 9.0  # the refresh rewrote it with a full TTL


async def test_xfetch_refreshes_early_when_expiry_is_near(make_cache: MakeCache) -> None:
    # XFetch refreshes an L2 hit when -delta * beta * ln(U) >= remaining. U is injected, so the
    # decision is fixed, not a draw (with random U and these numbers a refresh had a 3 % chance
    # not to happen, and the test then polled until its deadline). With delta 100 s, beta 1 and
    # at most 300 s left: U = 0.04 gives 321.9 s >= remaining, a refresh whatever time passed;
    # U = 0.9 gives 10.5 s, below remaining unless 289 s passed (the test times out at 60 s).
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"version": calls}

    near = make_cache(xfetch_beta=1.0, xfetch_random=lambda: 0.04)
    near.load_seconds = 100.0
    await near.l2.set("user:1", {"version": 0}, ttl=300.0)
    assert await near.get_or_load("user:1", loader) == {"version": 0}  # served, then refreshed
    await near.close()  # waits for the background refresh the hit started
    assert await near.l2.get("user:1") == {"version": 1} and calls == 1

    far = make_cache(xfetch_beta=1.0, xfetch_random=lambda: 0.9)
    far.load_seconds = 100.0
    await far.l2.set("user:2", {"version": 0}, ttl=300.0)
    assert await far.get_or_load("user:2", loader) == {"version": 0}
    await far.close()  # would wait for a refresh, had one started
    assert await far.l2.get("user:2") == {"version": 0} and calls == 1  # far from expiry


async def test_failed_refresh_keeps_the_value_and_releases_the_lock(
    make_cache: MakeCache, target: Target
) -> None:
    cache = make_cache()
    await cache.set("user:1", {"v": 1})

    async def failing() -> dict[str, int]:
        raise ConnectionError("source down")

    with pytest.raises(ConnectionError):
        await cache.refresh("user:1", failing)
    assert await target.client.exists(cache.l2.lock_key("user:1")) == 0
    assert await cache.get("user:1") == {"v": 1}

    async def works() -> dict[str, int]:
        return {"v": 2}

    assert await cache.refresh("user:1", works)
    assert await cache.l2.get("user:1") == {"v": 2}
