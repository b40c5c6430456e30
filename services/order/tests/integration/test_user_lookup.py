"""The user check on POST /orders: breaker + cache semantics against a real user service that
is stopped and started again, and cache eviction by user.* events from the users exchange."""

from __future__ import annotations

from typing import Any

import pytest
from shop_common.cache import MISS
from shop_common.clients.user import UserClient
from shop_testing.wait import eventually

from .conftest import ITEMS, RunningApp, Shopper, StartApp, UserService, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]

BODY = {"items": ITEMS, "currency": "EUR"}


async def test_user_service_down_cached_user_accepted_unknown_503_then_recovers(
    running: RunningApp, shopper: Shopper, user_service: UserService
) -> None:
    _, known = await shopper("Known")
    _, unknown = await shopper("Never looked up")
    assert (await running.http.post("/orders", json=BODY, headers=bearer(known))).status_code == 201

    await user_service.stop()
    refused = [
        await running.http.post("/orders", json=BODY, headers=bearer(unknown)) for _ in range(3)
    ]
    for response in refused:
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["content-type"].startswith("application/problem+json")
    # Two failures open the breaker (USER_BREAKER_FAILURES=2): the third is refused at once.
    assert "circuit open" in refused[-1].json()["detail"]
    accepted = await running.http.post("/orders", json=BODY, headers=bearer(known))
    assert accepted.status_code == 201, accepted.text

    await user_service.start()

    async def accepted_again() -> bool:
        response = await running.http.post("/orders", json=BODY, headers=bearer(unknown))
        assert response.status_code in (201, 503), response.text  # recovering, never a 500
        return response.status_code == 201

    await eventually(
        accepted_again, timeout=30, what="orders accepted after the user service returned"
    )


async def cached(running: RunningApp, key: str) -> Any:
    cache = running.runtime.cache
    assert cache is not None
    return await cache.lookup(key)


async def test_user_events_evict_the_cached_user(
    running: RunningApp, shopper: Shopper, user_client: UserClient, admin_token: str
) -> None:
    user, token = await shopper("Before")
    key = f"user:{user.id}"
    assert (await running.http.post("/orders", json=BODY, headers=bearer(token))).status_code == 201
    assert (await cached(running, key))["name"] == "Before"

    await user_client.update_user(user.id, {"name": "After"}, ["name"], token=admin_token)

    async def evicted() -> bool:
        return await cached(running, key) is MISS

    await eventually(evicted, what="user.updated evicting the cached user")
    assert (await running.http.post("/orders", json=BODY, headers=bearer(token))).status_code == 201
    assert (await cached(running, key))["name"] == "After"

    await user_client.delete_user(user.id, token=admin_token)

    async def refused_as_unknown() -> bool:
        response = await running.http.post("/orders", json=BODY, headers=bearer(token))
        assert response.status_code in (201, 422), response.text
        return response.status_code == 422 and response.json()["type"].endswith("unknown-user")

    await eventually(refused_as_unknown, what="user.deleted making the user unknown")


async def test_one_instance_consumes_the_event_and_every_instance_evicts(
    start_app: StartApp, shopper: Shopper, user_client: UserClient, admin_token: str
) -> None:
    # Two instances share the queue (competing consumers) and Redis: only one handles the
    # event, the coherence channel evicts the other's L1.
    apps = [await start_app(), await start_app()]
    user, token = await shopper("Shared")
    key = f"user:{user.id}"
    for app in apps:
        assert (await app.http.post("/orders", json=BODY, headers=bearer(token))).status_code == 201
        assert app.runtime.cache is not None
        assert app.runtime.cache.l1.lookup(key) is not MISS

    await user_client.update_user(user.id, {"name": "Renamed"}, ["name"], token=admin_token)

    async def evicted_everywhere() -> bool:
        return all(
            app.runtime.cache is not None and app.runtime.cache.l1.lookup(key) is MISS
            for app in apps
        )

    await eventually(evicted_everywhere, what="every instance's L1 evicted")
