"""Refresh-ahead of the user cache (USER_CACHE_REFRESH_AHEAD) against real Redis: a user read in
the last quarter of its TTL is reloaded in the background while the cached record answers; a
user read earlier is not; with the knob off nothing is reloaded ahead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from order_service.adapters.user_cache import CacheShape, OwnedCache
from order_service.adapters.users import UserLookup
from order_service.settings import Settings
from shop_common.cache import RefreshAhead
from shop_common.clients.user import UserClient, UserRecord
from shop_testing.wait import eventually

from .conftest import ITEMS, Shopper, StartApp, bearer

pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]

TTL = 300.0


class CountingUsers:
    """Stands in for the gRPC UserClient: answers GetUser with the current name, counts calls."""

    def __init__(self) -> None:
        self.name = "First"
        self.calls = 0

    async def get_user(self, user_id: int, **_: Any) -> UserRecord:
        self.calls += 1
        now = datetime.now(UTC)
        return UserRecord(user_id, "u@example.com", self.name, ("user",), now, now)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_hot_user_is_reloaded_in_the_background_and_served_from_cache_meanwhile(
    redis_url: str, redis_namespace: str
) -> None:
    settings = Settings(redis_url=redis_url, user_cache_namespace=f"{redis_namespace}ahead")
    cache = OwnedCache(CacheShape.users(settings), aioredis.Redis.from_url(redis_url))
    await cache.start()
    users, clock = CountingUsers(), Clock()
    ahead = RefreshAhead(cache, TTL, settings.user_cache_refresh_after, clock=clock)
    client: UserClient = users  # type: ignore[assignment]
    lookup = UserLookup.from_settings(settings, client, cache, ahead)
    try:
        assert (await lookup.require(1, token="t")).name == "First"
        users.name = "Second"
        clock.now += 0.5 * TTL  # read early: the cached record, no reload
        assert (await lookup.require(1, token="t")).name == "First"
        await ahead.wait_idle()
        assert users.calls == 1
        clock.now += 0.3 * TTL  # read late: still the cached record, reloaded behind it
        assert (await lookup.require(1, token="t")).name == "First"
        await ahead.wait_idle()
        assert users.calls == 2
        assert (await lookup.require(1, token="t")).name == "Second"
        assert (await cache.l2.remaining_ttl("user:1") or 0) > 0.9 * TTL  # a fresh TTL in Redis
        assert users.calls == 2
    finally:
        await ahead.wait_idle()
        await cache.close()


@pytest.mark.parametrize("refresh_ahead", [True, False], ids=["on", "off"])
async def test_the_running_service_refreshes_ahead_only_when_enabled(
    start_app: StartApp, shopper: Shopper, redis_namespace: str, refresh_ahead: bool
) -> None:
    running = await start_app(
        user_cache_ttl_seconds=3.0,
        user_cache_refresh_after=0.5,
        user_cache_refresh_ahead=refresh_ahead,
    )
    user, token = await shopper()
    key = f"user:{user.id}"
    body = {"items": ITEMS, "currency": "EUR"}
    assert (await running.http.post("/orders", json=body, headers=bearer(token))).status_code == 201
    cache = running.runtime.cache
    assert cache is not None

    async def past_half_its_ttl() -> bool:
        return (await cache.l2.remaining_ttl(key) or 0) < 1.4

    await eventually(past_half_its_ttl, timeout=5, what="the cached user half way through its TTL")
    assert (await running.http.post("/orders", json=body, headers=bearer(token))).status_code == 201

    async def reloaded() -> bool:
        return (await cache.l2.remaining_ttl(key) or 0) > 2.0

    if refresh_ahead:
        await eventually(reloaded, timeout=5, what="the user reloaded ahead of its expiry")
    else:
        assert not await reloaded()
