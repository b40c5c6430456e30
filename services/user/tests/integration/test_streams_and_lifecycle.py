"""Subscriptions across two instances, deadlines, health flipping, graceful shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from shop_testing.wait import eventually
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from user_service.server import UserServer

from .conftest import StartServer, bearer, create_user

pytestmark = pytest.mark.infra


async def test_subscription_fans_out_across_instances_and_detaches(
    start_server: StartServer, admin_token: str
) -> None:
    first: UserServer = await start_server()
    second: UserServer = await start_server()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as ch1,
        grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as ch2,
    ):
        writer = user_pb2_grpc.UserServiceStub(ch1)
        watcher = user_pb2_grpc.UserServiceStub(ch2)
        target = await create_user(writer, admin_token, "watched@example.com")
        everyone = watcher.SubscribeToUpdates(
            user_pb2.SubscribeToUpdatesRequest(), metadata=bearer(admin_token)
        )
        only_target = watcher.SubscribeToUpdates(
            user_pb2.SubscribeToUpdatesRequest(user_ids=[target.id]), metadata=bearer(admin_token)
        )
        await everyone.initial_metadata()
        await only_target.initial_metadata()
        assert second.hub.subscriber_count == 2
        other = await create_user(writer, admin_token, "other-watch@example.com")
        await writer.UpdateUser(
            user_pb2.UpdateUserRequest(
                user=user_pb2.User(id=target.id, name="Renamed"),
                update_mask=FieldMask(paths=["name"]),
            ),
            metadata=bearer(admin_token),
        )
        await writer.DeleteUser(
            user_pb2.DeleteUserRequest(id=target.id), metadata=bearer(admin_token)
        )
        got_all = [await everyone.read() for _ in range(3)]
        assert [(e.user_id, e.event_type) for e in got_all] == [
            (other.id, user_pb2.USER_EVENT_TYPE_CREATED),
            (target.id, user_pb2.USER_EVENT_TYPE_UPDATED),
            (target.id, user_pb2.USER_EVENT_TYPE_DELETED),
        ]
        assert got_all[1].user.name == "Renamed"
        got_target = [await only_target.read() for _ in range(2)]
        assert [e.event_type for e in got_target] == [
            user_pb2.USER_EVENT_TYPE_UPDATED,
            user_pb2.USER_EVENT_TYPE_DELETED,
        ]
        # The client goes away: the server detaches both subscribers, nothing leaks.
        everyone.cancel()
        only_target.cancel()
        await eventually(lambda: second.hub.subscriber_count == 0, what="subscribers detached")
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "user-update-hub"]
        assert len(tasks) == 2  # one listener per server process, not one per subscriber


async def _listen_connections(database_url: str) -> int:
    """PostgreSQL backends of this test's database whose last statement was a LISTEN."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query ILIKE 'LISTEN %' AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


async def _until_listen_connections(database_url: str, expected: int) -> None:
    async def reached() -> bool:
        return await _listen_connections(database_url) == expected

    await eventually(reached, interval=0.05, what=f"{expected} LISTEN connection(s)")


async def test_subscribers_share_one_listen_connection_and_none_outlives_the_server(
    start_server: StartServer, admin_token: str, database_url: str
) -> None:
    server: UserServer = await start_server()
    await _until_listen_connections(database_url, 1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        streams = [
            stub.SubscribeToUpdates(
                user_pb2.SubscribeToUpdatesRequest(), metadata=bearer(admin_token)
            )
            for _ in range(5)
        ]
        for stream in streams:
            await stream.initial_metadata()
        assert server.hub.subscriber_count == 5
        assert await _listen_connections(database_url) == 1
        for stream in streams:
            stream.cancel()
        await eventually(lambda: server.hub.subscriber_count == 0, what="subscribers detached")
    # The clients are gone: still exactly the hub's own connection, not one per subscriber.
    assert await _listen_connections(database_url) == 1
    await server.stop(grace=0.5)
    await _until_listen_connections(database_url, 0)


async def test_deadline_is_honoured(start_server: StartServer, admin_token: str) -> None:
    server: UserServer = await start_server()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        call = stub.SubscribeToUpdates(
            user_pb2.SubscribeToUpdatesRequest(), metadata=bearer(admin_token), timeout=0.3
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call:
                pass
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await eventually(lambda: server.hub.subscriber_count == 0, what="subscribers detached")


async def test_health_flips_when_the_database_goes_away_and_back(
    start_server: StartServer, make_database: object
) -> None:
    url = make_database("health")  # type: ignore[operator]
    server: UserServer = await start_server(url)
    database = url.rsplit("/", 1)[1]
    admin = create_async_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)

        async def status() -> int:
            response = await health.Check(
                health_pb2.HealthCheckRequest(service="shop.user.v1.UserService")
            )
            return int(response.status)

        def reports(expected: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return await status() == expected

            return check

        # DatabaseHealth probes every interval, each probe bounded by its timeout: a flip shows
        # within one such cycle, the way back may take a failed reconnect first. x10 for load.
        flips_within = 10 * (
            server.settings.health_check_interval + server.settings.health_check_timeout
        )
        assert await status() == health_pb2.HealthCheckResponse.SERVING
        try:
            async with admin.connect() as conn:
                await conn.execute(
                    text(
                        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
                    )
                )
                await conn.execute(text(f'ALTER DATABASE "{database}" RENAME TO "{database}_away"'))
            await eventually(
                reports(health_pb2.HealthCheckResponse.NOT_SERVING),
                timeout=flips_within,
                what="NOT_SERVING",
            )
        finally:
            async with admin.connect() as conn:
                await conn.execute(
                    text(
                        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}_away'"
                    )
                )
                await conn.execute(text(f'ALTER DATABASE "{database}_away" RENAME TO "{database}"'))
            await admin.dispose()
        await eventually(  # the pool reconnects on the next probe
            reports(health_pb2.HealthCheckResponse.SERVING), timeout=flips_within, what="SERVING"
        )


async def test_graceful_shutdown_finishes_the_call_in_flight(
    start_server: StartServer, admin_token: str
) -> None:
    server: UserServer = await start_server()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        # argon2 hashing makes CreateUser take a while: it is in flight when stop begins.
        in_flight = asyncio.ensure_future(create_user(stub, admin_token, "inflight@example.com"))
        await eventually(lambda: server.calls_in_flight() == 1, what="CreateUser in flight")
        stopping = asyncio.ensure_future(server.stop(grace=5.0))
        created = await in_flight
        assert created.email == "inflight@example.com"
        await stopping
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetUser(
                user_pb2.GetUserRequest(id=created.id), metadata=bearer(admin_token), timeout=2
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
