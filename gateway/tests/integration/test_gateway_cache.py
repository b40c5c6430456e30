"""The response cache through the running gateway: HIT/MISS/304, isolation, no-store, eviction."""

from __future__ import annotations

import asyncio

import pytest
from shop_common.auth import TokenIssuer
from shop_common.messaging import Publisher, UserChanged, connect, new_event
from shop_testing.wait import eventually

from .conftest import ORDER_ROUTES, Backend, StartGateway, bearer

CACHED_TTL = next(r["cache_ttl_seconds"] for r in ORDER_ROUTES if r["name"] == "cached")

pytestmark = pytest.mark.infra


async def test_miss_then_hit_then_304_on_a_matching_etag(
    start_gateway: StartGateway, backend: Backend
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        first = await client.get("/api/orders/cached/1", params={"b": "2", "a": "1"})
        second = await client.get("/api/orders/cached/1", params={"a": "1", "b": "2"})
        etag = second.headers["etag"]
        conditional = await client.get(
            "/api/orders/cached/1", params={"a": "1", "b": "2"}, headers={"If-None-Match": etag}
        )
        stale_tag = await client.get(
            "/api/orders/cached/1", params={"a": "1", "b": "2"}, headers={"If-None-Match": '"x"'}
        )
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
    assert (second.status_code, second.headers["x-cache"]) == (200, "HIT")
    assert second.content == first.content
    assert first.headers["etag"] == etag
    assert second.headers["content-type"] == "application/json; charset=utf-8"
    assert conditional.status_code == 304
    assert conditional.content == b""
    assert conditional.headers["etag"] == etag
    assert stale_tag.status_code == 200
    assert backend.hits("GET", "/orders/cached/1") == 1


async def test_one_users_response_is_never_served_to_another(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    alice, bob = bearer(issuer.issue("101", [])), bearer(issuer.issue("102", []))
    async with gateway.client() as client:
        alice_first = await client.get("/api/orders/cached/mine", headers=alice)
        bob_first = await client.get("/api/orders/cached/mine", headers=bob)
        anonymous = await client.get("/api/orders/cached/mine")
        alice_again = await client.get("/api/orders/cached/mine", headers=alice)
    assert [r.headers["x-cache"] for r in (alice_first, bob_first, anonymous, alice_again)] == [
        "MISS",
        "MISS",
        "MISS",
        "HIT",
    ]
    assert bob_first.json()["headers"]["x-user-id"] == "102"
    assert "x-user-id" not in anonymous.json()["headers"]
    assert alice_again.json()["headers"]["x-user-id"] == "101"
    assert backend.hits("GET", "/orders/cached/mine") == 3


async def test_no_store_from_backend_or_client_and_no_cache_from_client_are_honoured(
    start_gateway: StartGateway, backend: Backend
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        for _ in range(2):
            refused = await client.get("/api/orders/cached/nostore")
            assert refused.headers["x-cache"] == "MISS"
        not_stored = await client.get("/api/orders/cached/2", headers={"Cache-Control": "no-store"})
        after_no_store = await client.get("/api/orders/cached/2")
        revalidated = await client.get(
            "/api/orders/cached/2", headers={"Cache-Control": "no-cache"}
        )
        hit = await client.get("/api/orders/cached/2")
    assert backend.hits("GET", "/orders/cached/nostore") == 2
    assert not_stored.headers["x-cache"] == "MISS"
    assert after_no_store.headers["x-cache"] == "MISS"
    assert revalidated.headers["x-cache"] == "MISS"
    assert hit.headers["x-cache"] == "HIT"
    # no-cache went to the backend and refreshed the entry the HIT then served.
    assert hit.json()["count"] == revalidated.json()["count"]
    assert backend.hits("GET", "/orders/cached/2") == 3


async def test_error_answers_are_not_cached(start_gateway: StartGateway, backend: Backend) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        answers = [await client.get("/api/orders/cached/x") for _ in range(1)]
        backend.status = 404
        misses = [await client.get("/api/orders/cached/y") for _ in range(2)]
    assert answers[0].headers["x-cache"] == "MISS"
    assert [r.status_code for r in misses] == [404, 404]
    assert backend.hits("GET", "/orders/cached/y") == 2


async def test_user_updated_event_evicts_that_users_entries(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer, amqp_vhost_url: str
) -> None:
    gateway = await start_gateway(
        {"order-service": backend.address}, cache_events_enabled=True, amqp_url=amqp_vhost_url
    )
    async with asyncio.timeout(20):
        await gateway.app.state.cache_events.started.wait()
    changed, other = bearer(issuer.issue("501", [])), bearer(issuer.issue("502", []))
    async with gateway.client() as client:
        for headers in (changed, other):
            await client.get("/api/orders/cached/profile", headers=headers)
            assert (await client.get("/api/orders/cached/profile", headers=headers)).headers[
                "x-cache"
            ] == "HIT"
        connection = await connect(amqp_vhost_url, attempts=3)
        publisher = Publisher(connection)
        try:
            payload = UserChanged(user_id=501, email="u@example.com", name="U", roles=["user"])
            await publisher.publish("users", new_event("user.updated", payload))
        finally:
            await publisher.close()
            await connection.close()

        async def evicted() -> bool:
            after = await client.get("/api/orders/cached/profile", headers=changed)
            return after.headers["x-cache"] == "MISS"

        # Within half the entry's TTL: a MISS any later could be expiry, not the event.
        await eventually(evicted, timeout=CACHED_TTL / 2, interval=0.05, what="501's entry evicted")
        untouched = await client.get("/api/orders/cached/profile", headers=other)
    assert untouched.headers["x-cache"] == "HIT"
    await gateway.stop()  # before the vhost goes
