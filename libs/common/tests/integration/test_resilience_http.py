"""Breaker + retry around real httpx calls: a down port trips it, a live server closes it again."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    RetryPolicy,
    resilient_call,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


async def test_down_dependency_trips_then_recovers_without_restart() -> None:
    now = [0.0]
    port = free_port()
    breaker = CircuitBreaker(
        "t-http", BreakerConfig(consecutive_failures=2, recovery_timeout=30), clock=lambda: now[0]
    )
    url = f"http://127.0.0.1:{port}/"
    async with httpx.AsyncClient(timeout=2) as client:

        async def get() -> str:
            response = await client.get(url)
            response.raise_for_status()
            return response.text

        policy = RetryPolicy(max_attempts=2, initial_backoff=0)
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await resilient_call(get, breaker=breaker, retry=policy)
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError) as info:
            await resilient_call(get, breaker=breaker, retry=policy)
        assert info.value.retry_after == pytest.approx(30)

        server = await asyncio.start_server(serve_ok, "127.0.0.1", port)
        try:
            now[0] += 30
            assert await resilient_call(get, breaker=breaker, retry=policy) == "ok"
            assert breaker.state is CircuitState.CLOSED
        finally:
            server.close()
            await server.wait_closed()
