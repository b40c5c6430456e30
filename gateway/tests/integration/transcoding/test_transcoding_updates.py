"""SubscribeToUpdates as Server-Sent Events: delivery, heartbeats, errors, and clean departure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gateway.entrypoints.transcoding import STREAMS_ACTIVE
from shop_common.auth import TokenIssuer
from shop_devstack.client import ShopClient
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sse_open() -> float:
    return STREAMS_ACTIVE.labels("sse")._value.get()


async def frames(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parsed SSE frames ({"event", "data", "id", "comment"}) as they arrive."""
    frame: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            frame.setdefault("comment", line[1:].strip())
        else:
            key, _, value = line.partition(":")
            frame[key] = json.loads(value) if key == "data" else value.strip()


async def next_event(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async for frame in stream:
        if "data" in frame:
            return frame
    raise AssertionError("the stream ended without an event")


async def next_change(
    stream: AsyncIterator[dict[str, Any]], user_id: int
) -> tuple[dict[str, Any], int]:
    """The next event other than the user's own creation, and how many creations came first.

    A user made just before subscribing can still have its user.created on its way through the
    user service's LISTEN connection when the subscription attaches (a loaded machine): then it
    arrives first. It must be about that user."""
    skipped = 0
    while (frame := await next_event(stream))["event"] == "user.created":
        assert frame["data"]["user_id"] == user_id, frame
        skipped += 1
    return frame, skipped


async def test_an_update_made_by_another_client_arrives_on_the_stream(
    gateway, new_user, admin_token, issuer: TokenIssuer
) -> None:
    user = await new_user(name="Before")
    own_token = issuer.issue(str(user["id"]), ["user"])
    params = {"ids": str(user["id"])}
    async with gateway.http.stream(
        "GET", "/api/users/updates", params=params, headers=bearer(own_token)
    ) as response:
        # Headers arrive only once the user service has attached the subscription.
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        async with httpx.AsyncClient(base_url=gateway.url) as other:
            patched = await other.patch(
                f"/api/users/{user['id']}", json={"name": "After"}, headers=bearer(admin_token)
            )
            assert patched.status_code == 200
        async with asyncio.timeout(15):
            frame, skipped = await next_change(frames(response), user["id"])
    assert frame["event"] == "user.updated"
    assert frame["id"] == str(skipped + 1)  # ids count this stream's events from 1
    assert frame["data"]["user_id"] == user["id"]
    assert frame["data"]["user"]["name"] == "After"
    assert frame["data"]["event_type"] == "user.updated"


async def test_a_deletion_arrives_without_a_user(gateway, new_user, admin_token) -> None:
    user = await new_user()
    params = {"ids": f"{user['id']},{user['id'] + 1000}"}
    async with gateway.http.stream(
        "GET", "/api/users/updates", params=params, headers=bearer(admin_token)
    ) as response:
        assert response.status_code == 200
        deleted = await gateway.http.delete(f"/api/users/{user['id']}", headers=bearer(admin_token))
        assert deleted.status_code == 204
        async with asyncio.timeout(15):
            frame, _ = await next_change(frames(response), user["id"])
    assert (frame["event"], frame["data"]["user"]) == ("user.deleted", None)


async def test_the_stream_task_and_grpc_call_end_when_the_client_disconnects(
    gateway, user_server, new_user, admin_token
) -> None:
    user = await new_user()
    before = sse_open()
    assert user_server.hub.subscriber_count == 0
    async with gateway.http.stream(
        "GET", "/api/users/updates", params={"ids": user["id"]}, headers=bearer(admin_token)
    ) as response:
        assert response.status_code == 200
        assert user_server.hub.subscriber_count == 1
        assert sse_open() == before + 1
    # The client has closed its connection without reading further.
    # Server side: the subscription is gone and no RPC is running; gateway side: the
    # response (and its body task) has run its close.
    await eventually(
        lambda: (
            not user_server.hub.subscriber_count
            and not user_server.calls_in_flight()
            and sse_open() == before
        ),
        what="the stream torn down on both sides",
    )


async def test_a_quiet_stream_sends_keepalive_comments(
    user_server, make_gateway, admin_token
) -> None:
    gateway = await make_gateway(f"127.0.0.1:{user_server.port}", heartbeat_seconds=0.1)
    async with gateway.http.stream(
        "GET", "/api/users/updates", params={"ids": "5"}, headers=bearer(admin_token)
    ) as response:
        comments = []
        async with asyncio.timeout(10):
            async for frame in frames(response):
                comments.append(frame.get("comment"))
                if comments.count("keepalive") == 2:
                    break
    assert comments[0] == "subscribed"


async def test_refusals_and_bad_ids_are_problems_before_the_stream(
    gateway, issuer: TokenIssuer, admin_token
) -> None:
    everyone = await gateway.http.get(
        "/api/users/updates", headers=bearer(issuer.issue("12", ["user"]))
    )
    assert everyone.status_code == 403
    assert everyone.headers["content-type"] == "application/problem+json"
    for ids in ("abc", "1,-2", str(2**63), "9" * 4400):
        bad = await gateway.http.get(
            "/api/users/updates", params={"ids": ids}, headers=bearer(admin_token)
        )
        assert bad.status_code == 422, ids
    assert (await gateway.http.get("/api/users/updates")).status_code == 401


async def test_the_devstack_client_contract_receives_updates(
    gateway, new_user, admin_token
) -> None:
    """The demo's ShopClient (the gateway's public contract) streams users and SSE events."""
    user = await new_user()
    shop = ShopClient(gateway.url)
    try:
        streamed = [u["id"] async for u in shop.stream_users(admin_token)]
        assert user["id"] in streamed
        async with shop.user_updates(admin_token, [user["id"]]) as events:
            # Entered once attached (the gateway answers after the subscription is live).
            await shop.update_user(admin_token, user["id"], {"name": "Via Contract"})
            # The user's own creation may still be on its way through the hub's LISTEN connection
            # when the subscription attaches (a loaded machine): it arrives first, and is about
            # this user; the update follows it.
            earlier = []
            async with asyncio.timeout(15):
                event = await anext(events)
                while event["event_type"] == "user.created":
                    earlier.append(event)
                    event = await anext(events)
        assert (event["event_type"], event["user"]["name"]) == ("user.updated", "Via Contract")
        assert all(e["user_id"] == user["id"] for e in earlier), earlier
    finally:
        await shop.close()
