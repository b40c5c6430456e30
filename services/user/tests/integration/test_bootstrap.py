"""bootstrap(): one AsyncExitStack, so a start that fails half-way unwinds whatever had started
(server, update hub, health probe, read pool, engine, registry) and so does leaving the block.

"Unwound" is checked from the outside: no PostgreSQL backend of the test's database is left
(engine, read pool and the hub's LISTEN connection all closed), the port refuses calls, no
background task of the service is left, and the registry saw deregister and close.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from shop_common.auth import SigningKey
from shop_common.discovery import HealthCheck, ServiceInstance, StaticRegistry
from shop_testing.wait import eventually
from user_service.adapters.database import asyncpg_dsn, create_engine, create_read_pool
from user_service.bootstrap import bootstrap

from .conftest import make_settings

pytestmark = pytest.mark.infra
SERVICE_TASKS = ("user-update-hub", "db-health", "user-reads")


class RecordingRegistry(StaticRegistry):
    """The static registry, noting each call; `fail` makes register() raise."""

    def __init__(self, fail: BaseException | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.calls: list[str] = []
        self.instances: list[ServiceInstance] = []

    async def register(self, instance: ServiceInstance, check: HealthCheck | None = None) -> None:
        self.calls.append("register")
        self.instances.append(instance)
        if self.fail is not None:
            raise self.fail
        await super().register(instance, check)

    async def deregister(self, instance_id: str) -> None:
        self.calls.append("deregister")
        await super().deregister(instance_id)

    async def close(self) -> None:
        self.calls.append("close")
        await super().close()


async def _backends(database_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


async def _assert_all_unwound(database_url: str, port: int | None = None) -> None:
    async def no_backends() -> bool:
        return await _backends(database_url) == 0

    await eventually(no_backends, interval=0.05, what="every connection of the service closed")
    left = [t.get_name() for t in asyncio.all_tasks() if t.get_name() in SERVICE_TASKS]
    assert left == []
    if port is not None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_registration_failing_after_the_server_started_unwinds_everything(
    database_url: str, signing_key: SigningKey
) -> None:
    registry = RecordingRegistry(fail=RuntimeError("the registry refused"))
    settings = make_settings(database_url, signing_key)
    with pytest.raises(RuntimeError, match="the registry refused"):
        async with bootstrap(settings, address="127.0.0.1:0", registry=registry):
            pytest.fail("bootstrap yielded although registration failed")
    # By then the server was serving, the hub listening and the health probe had used both pools.
    [instance] = registry.instances
    assert registry.calls == ["register", "close"]
    await _assert_all_unwound(database_url, instance.port)


async def test_a_failing_step_after_the_engine_and_read_pool_were_used_closes_them(
    database_url: str, signing_key: SigningKey
) -> None:
    settings = make_settings(database_url, signing_key, outbox_relay_enabled=True)
    engine = create_engine(settings)
    read_pool = await create_read_pool(settings)

    async def broker_down() -> Any:
        # The engine and the read pool hold connections when the next step fails.
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        await read_pool.fetchval("SELECT 1")
        assert await _backends(database_url) >= 2
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError, match="broker down"):
        async with bootstrap(
            settings,
            address="127.0.0.1:0",
            engine=engine,
            read_pool=read_pool,
            connect_broker=broker_down,
            registry=RecordingRegistry(),
        ):
            pytest.fail("bootstrap yielded although the broker step failed")
    assert read_pool.is_closing()
    assert engine.pool.checkedin() == 0
    await _assert_all_unwound(database_url)


async def test_leaving_the_block_on_an_error_deregisters_and_closes_everything(
    database_url: str, signing_key: SigningKey
) -> None:
    registry = RecordingRegistry()
    settings = make_settings(database_url, signing_key)
    ports: list[int] = []

    async def run_and_fail() -> None:
        async with bootstrap(settings, address="127.0.0.1:0", registry=registry) as app:
            ports.append(app.port)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                response = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="shop.user.v1.UserService"), timeout=5
                )
            assert response.status == health_pb2.HealthCheckResponse.SERVING
            assert registry.calls == ["register"]
            raise LookupError("the caller failed while the service ran")

    with pytest.raises(LookupError):
        await run_and_fail()
    assert registry.calls == ["register", "deregister", "close"]
    await _assert_all_unwound(database_url, ports[0])
