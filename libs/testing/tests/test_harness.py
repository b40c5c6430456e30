"""The harness gives every test real, isolated PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis
from shop_testing import infra

pytestmark = pytest.mark.infra


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_each_database_is_fresh_and_separate(make_database: Callable[[str], str]) -> None:
    a, b = make_database("a"), make_database("b")
    assert a != b
    conn = await asyncpg.connect(plain(a))
    try:
        await conn.execute("CREATE TABLE marker (id int)")
    finally:
        await conn.close()
    conn = await asyncpg.connect(plain(b))
    try:
        assert await conn.fetchval("SELECT to_regclass('marker')") is None
    finally:
        await conn.close()


async def test_redis_namespace_is_unique_and_usable(
    redis_client: aioredis.Redis, redis_namespace: str
) -> None:
    await redis_client.set(f"{redis_namespace}k", "v")
    assert await redis_client.get(f"{redis_namespace}k") == b"v"
    assert redis_namespace.startswith("t_")


async def test_vhost_is_empty_and_private(amqp_vhost_url: str) -> None:
    connection = await aio_pika.connect(amqp_vhost_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("probe", auto_delete=True)
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key="probe")
        incoming = await queue.get(timeout=5)
        assert incoming.body == b"x"
        await incoming.ack()


def test_missing_service_names_itself_and_how_to_provide_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(infra, "port_answers", lambda *a, **k: False)
    monkeypatch.setattr(infra, "docker_engine_answers", lambda: False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(infra.InfrastructureMissingError) as err:
        infra.resolve("redis", infra.Containers())
    line = str(err.value)
    assert "\n" not in line
    assert "redis is not available" in line and "REDIS_URL" in line


def test_explicit_url_wins_over_the_local_port(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")
    assert infra.resolve("redis").source == "env"
    assert infra.resolve("redis").url.endswith("/5")
