"""The fault proxy against real Redis: traffic flows, cut() breaks it at once, restore() heals it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from shop_devstack.faults import TcpProxy

pytestmark = pytest.mark.infra


async def test_cut_resets_open_connections_and_restore_lets_clients_back(redis_url: str) -> None:
    parts = urlsplit(redis_url)
    proxy = TcpProxy("redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    client = aioredis.from_url(proxy.url_for(redis_url), socket_timeout=2, retry_on_timeout=False)
    try:
        assert await client.ping()
        proxy.cut()
        with pytest.raises((RedisConnectionError, OSError)):
            await client.ping()
        with pytest.raises((RedisConnectionError, OSError)):
            await client.ping()  # a new connection is refused too
        proxy.restore()
        assert await client.ping()
    finally:
        await client.aclose()
        await proxy.stop()


def test_url_for_keeps_credentials_and_path() -> None:
    proxy = TcpProxy("rabbitmq", "127.0.0.1", 5672)
    proxy.port = 40001
    assert (
        proxy.url_for("amqp://guest:guest@127.0.0.1:5672/vh")
        == "amqp://guest:guest@127.0.0.1:40001/vh"
    )
    assert proxy.url_for("redis://127.0.0.1:6379/9") == "redis://127.0.0.1:40001/9"
