"""The user service's /metrics, scraped over HTTP as Prometheus does (METRICS_PORT): the RED
family for every RPC (a NOT_FOUND is a client_error, a stream is counted once it ends),
coalescing, update-stream subscriptions and the outbox lag."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from shop_common.messaging import EventEnvelope
from shop_protos.user.v1 import user_pb2, user_pb2_grpc
from shop_testing.scrape import Samples, free_port, scrape
from shop_testing.wait import eventually
from user_service.server import UserServer

from .conftest import StartServer, bearer, create_user

pytestmark = pytest.mark.infra

GET_USER = "/shop.user.v1.UserService/GetUser"
LIST_USERS = "/shop.user.v1.UserService/ListUsers"
SUBSCRIBE = "/shop.user.v1.UserService/SubscribeToUpdates"


async def _metrics(server: UserServer) -> Samples:
    assert server.app.metrics_port is not None
    return await scrape(f"http://127.0.0.1:{server.app.metrics_port}/metrics")


def _requests(samples: Samples, operation: str, code: str) -> float:
    return samples.value("shop_requests_total", protocol="grpc", operation=operation, code=code)


async def test_every_rpc_is_counted_by_method_and_code_and_timed(
    start_server: StartServer, admin_token: str
) -> None:
    port = free_port()
    server = await start_server(metrics_port=port)
    assert server.app.metrics_port == port
    before = await _metrics(server)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        user = await create_user(stub, admin_token, "red@example.com")
        await stub.GetUser(user_pb2.GetUserRequest(id=user.id), metadata=bearer(admin_token))
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetUser(
                user_pb2.GetUserRequest(id=user.id + 10_000), metadata=bearer(admin_token)
            )
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        listed = [
            m
            async for m in stub.ListUsers(user_pb2.ListUsersRequest(), metadata=bearer(admin_token))
        ]
        assert listed
    after = await _metrics(server)

    assert _requests(after, GET_USER, "OK") - _requests(before, GET_USER, "OK") == 1
    assert _requests(after, GET_USER, "NOT_FOUND") - _requests(before, GET_USER, "NOT_FOUND") == 1
    assert after.has("shop_requests_total", operation=GET_USER, code="OK", outcome="ok")
    assert after.has(
        "shop_requests_total", operation=GET_USER, code="NOT_FOUND", outcome="client_error"
    )
    assert _requests(after, LIST_USERS, "OK") - _requests(before, LIST_USERS, "OK") == 1
    timed = "shop_request_duration_seconds_count"
    assert (
        after.value(timed, protocol="grpc", operation=GET_USER)
        - before.value(timed, protocol="grpc", operation=GET_USER)
        == 2
    )
    assert after.has("shop_request_duration_seconds_bucket", operation=LIST_USERS, le="+Inf")
    assert after.has("shop_requests_in_flight", protocol="grpc")


async def test_a_subscription_is_a_gauge_while_attached_and_a_request_once_it_ends(
    start_server: StartServer, admin_token: str
) -> None:
    server = await start_server(metrics_port=free_port())
    before = await _metrics(server)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        stream = stub.SubscribeToUpdates(
            user_pb2.SubscribeToUpdatesRequest(), metadata=bearer(admin_token)
        )
        await stream.initial_metadata()
        attached = await _metrics(server)
        assert (
            attached.value("shop_user_subscriptions_active")
            - before.value("shop_user_subscriptions_active")
            == 1
        )
        assert attached.value("shop_requests_in_flight", protocol="grpc") >= 1
        stream.cancel()

    async def detached_and_counted() -> bool:
        now = await _metrics(server)
        return (
            now.value("shop_user_subscriptions_active")
            == before.value("shop_user_subscriptions_active")
            and _requests(now, SUBSCRIBE, "CANCELLED") - _requests(before, SUBSCRIBE, "CANCELLED")
            == 1
        )

    await eventually(detached_and_counted, what="the cancelled stream detached and counted")
    done = await _metrics(server)
    assert done.has("shop_requests_total", operation=SUBSCRIBE, outcome="client_error")


async def test_coalesced_reads_and_queries_are_exported(
    start_server: StartServer, admin_token: str
) -> None:
    server = await start_server(metrics_port=free_port(), get_user_coalesce_queries=1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        user = await create_user(stub, admin_token, "coalesced@example.com")
        before = await _metrics(server)
        reads = 50
        await asyncio.gather(
            *(
                stub.GetUser(user_pb2.GetUserRequest(id=user.id), metadata=bearer(admin_token))
                for _ in range(reads)
            )
        )
    after = await _metrics(server)
    read_delta = after.value("shop_user_coalesced_reads_total") - before.value(
        "shop_user_coalesced_reads_total"
    )
    query_delta = after.value("shop_user_coalesced_queries_total") - before.value(
        "shop_user_coalesced_queries_total"
    )
    reader = server.repository.reader
    assert reader is not None
    assert read_delta == reads
    assert 1 <= query_delta <= reads


async def test_the_outbox_lag_is_exported_by_the_user_service(
    amqp_vhost_url: str, database_url: str, start_server: StartServer
) -> None:
    server = await start_server(
        amqp_url=amqp_vhost_url,
        outbox_relay_enabled=True,
        metrics_port=free_port(),
        metrics_interval_seconds=0.2,
    )
    # A row no queue is bound for, written an hour ago: the relay cannot publish it (mandatory
    # publishing, returned unroutable), so it stays unsent and ages.
    envelope = EventEnvelope(event_type="user.nobody-listens")
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO outbox (event_id, exchange, routing_key, aggregate_id, envelope,"
            " created_at) VALUES ($1, 'users', 'nobody.listens', 'lag-test', $2::jsonb,"
            " now() - interval '1 hour')",
            envelope.event_id,
            envelope.model_dump_json(),
        )
    finally:
        await connection.close()

    async def sampled() -> bool:
        samples = await _metrics(server)
        return (
            samples.value("shop_outbox_pending") >= 1
            and samples.value("shop_outbox_lag_seconds") >= 3600
        )

    await eventually(sampled, what="the aged outbox row on the user service's /metrics")


async def test_metrics_port_zero_serves_nothing(start_server: StartServer) -> None:
    server = await start_server(metrics_port=0)
    assert server.app.metrics_port is None
