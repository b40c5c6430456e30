"""`python -m order_service` as a real process: ready from the environment alone, SIGTERM
stops it cleanly after the relay drained what was committed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from order_service.settings import Settings
from shop_testing.wait import eventually

from .conftest import ITEMS, Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_module_entry_point_serves_and_stops_gracefully_on_sigterm(
    order_settings: Callable[..., Settings], shopper: Shopper, tmp_path: Path
) -> None:
    settings = order_settings()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "AMQP_URL": settings.amqp_url,
        "REDIS_URL": settings.redis_url,
        "USER_CACHE_NAMESPACE": settings.cache_namespace,
        "USER_SERVICE_ADDRESSES": settings.user_service_addresses,
        "CATALOG_SERVICE_ADDRESSES": settings.catalog_service_addresses,
        "JWT_PUBLIC_KEYS": json.dumps(settings.jwt_public_keys),
        "JWT_ISSUER": settings.jwt_issuer,
        "JWT_AUDIENCE": settings.jwt_audience,
        "HTTP_PORT": str(port),
        "DATABASE_POOL_SIZE": "2",
    }
    log_file = (tmp_path / "order.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "order_service",
        env=env,
        stdout=log_file,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def ready() -> bool:
                if process.returncode is not None:
                    log_file.flush()
                    tail = (tmp_path / "order.log").read_bytes().decode(errors="replace")[-3000:]
                    raise AssertionError(f"the process exited ({process.returncode}):\n{tail}")
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=45, what="the order process ready")
            _, token = await shopper()
            placed = await http.post(
                "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
            )
            assert placed.status_code == 201, placed.text
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log_file.close()
    output = (tmp_path / "order.log").read_bytes()
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown (exit status -15).
    assert process.returncode in (0, -signal.SIGTERM), output.decode()[-2000:]
    assert b"order_service_stopped" in output, output.decode()[-2000:]
    dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
    finally:
        await conn.close()
