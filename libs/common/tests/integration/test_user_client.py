"""The typed UserClient against two real user-service instances (round robin, retry, deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.clients.user import UserClient, UserRecord, target_for
from shop_testing.wait import eventually
from user_service.server import UserServer, create_server
from user_service.settings import Settings

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key("client-kid")


def _settings(database_url: str, key: SigningKey) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_public_keys={key.kid: key.public_pem},
        jwt_issuer="i",
        jwt_audience="a",
    )


@pytest_asyncio.fixture
async def servers(database_url: str, key: SigningKey) -> AsyncIterator[list[UserServer]]:
    running = [
        (await create_server(_settings(database_url, key), "127.0.0.1:0"))[0] for _ in range(2)
    ]
    yield running
    for server in running:
        await server.stop(grace=0.5)


async def test_crud_list_subscribe_and_round_robin(
    servers: list[UserServer], key: SigningKey
) -> None:
    admin = TokenIssuer(key, "i", "a").issue("1", ["admin"])
    client = UserClient([f"127.0.0.1:{s.port}" for s in servers])
    try:
        created = await client.create_user(
            "client@example.com", "Cli", "long password", token=admin
        )
        assert await client.get_user(created.id, token=admin) == created
        assert UserRecord.from_dict(created.to_dict()) == created
        events = client.subscribe([created.id], token=admin)
        # Start the stream, then change the user until the event arrives (subscription attach is async).
        next_event = asyncio.ensure_future(anext(events))
        updated = None

        async def update_seen() -> bool:
            nonlocal updated
            updated = await client.update_user(
                created.id, {"name": "Renamed"}, ["name"], token=admin
            )
            await asyncio.wait([next_event], timeout=0.2)  # the poll interval
            return next_event.done()

        await eventually(update_seen, interval=0, what="a user.updated event on the stream")
        event = next_event.result()
        assert (event.event_type, event.user_id, event.user and event.user.name) == (
            "user.updated",
            created.id,
            "Renamed",
        )
        await events.aclose()
        assert updated is not None and updated.name == "Renamed"
        for i in range(4):
            await client.create_user(f"c{i}@example.com", "C", "long password", token=admin)
        emails = [
            u.email
            async for u in client.list_users(token=admin, page_size=2, filter="email:@example.com")
        ]
        assert emails == ["client@example.com"] + [f"c{i}@example.com" for i in range(4)]
        assert (await client.authenticate("client@example.com", "long password")).id == created.id
        # round_robin: both instances served calls.
        for _ in range(6):
            await client.get_user(created.id, token=admin)
        assert all(s.pipeline.calls_total > 0 for s in servers)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.get_user(10**9, token=admin)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        await client.delete_user(created.id, token=admin)
    finally:
        await client.close()


async def test_unreachable_service_fails_fast_with_unavailable() -> None:
    client = UserClient(["127.0.0.1:1"], default_timeout=1.0, max_attempts=2)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.get_user(1, token="t")
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        await client.close()


def test_target_for_addresses() -> None:
    assert target_for(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert target_for(["user-1:50051"]) == "dns:///user-1:50051"
    assert target_for(["localhost:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(ValueError, match="host:port"):
        target_for(["127.0.0.1", "127.0.0.1:2"])
