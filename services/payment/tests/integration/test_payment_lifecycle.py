"""Process lifecycle: `python -m payment_service` serves and stops on SIGTERM; a stop loses nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from shop_common.auth import SigningKey
from sqlalchemy import text

pytestmark = pytest.mark.infra

Poll = Callable[..., Awaitable[None]]


async def test_a_stop_finishes_in_flight_charges_drains_their_events_and_leaves_the_rest(
    payment_app: Any, start_app: Any, broker: Any, eventually: Poll
) -> None:
    await payment_app.stop()  # only the slow instance below consumes
    slow = await start_app(consumer_prefetch=2, consumer_concurrency=2, provider_latency_ms=300)
    orders = [await broker.stock_reserved("7.00") for _ in range(8)]

    async def charging() -> bool:
        return bool(slow.running.consumer.in_flight == 2)

    await eventually(charging)
    engine = slow.engine
    await slow.stop()

    async with engine.connect() as conn:
        charged = {r.order_id for r in await conn.execute(text("SELECT order_id FROM payments"))}
        unsent = (
            await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        ).scalar()
    await engine.dispose()
    assert len(charged) >= 2, "the messages in flight were finished, not abandoned"
    assert len(charged) < len(orders), "the stop did not wait for the whole queue"
    assert unsent == 0, "the relay drained what the finished handlers committed"

    async def published() -> bool:
        done = {e.payload["order_id"] for e in broker.results}
        return {str(o) for o in charged} <= done

    await eventually(published)

    successor = await start_app()

    async def all_charged() -> bool:
        done = {
            e.payload["order_id"] for e in broker.results if e.event_type == "payment.succeeded"
        }
        return {str(o.order_id) for o in orders} <= done

    await eventually(all_charged)
    async with successor.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM payments"))).scalar()
    assert count == len(orders)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)  # a cold interpreter start on a loaded 2-core machine
def test_python_m_payment_service_serves_until_sigterm(
    database_url: str, amqp_vhost_url: str, signing_key: SigningKey
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_vhost_url,
        "HTTP_PORT": str(port),
        "JWT_PUBLIC_KEYS": json.dumps({signing_key.kid: signing_key.public_pem}),
        "RETRY_DELAYS_MS": "[100, 200]",
        "LOG_JSON": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "payment_service"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        if ready is None or ready.status_code != 200:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"the service never became ready:\n{output[-3000:]}")
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown (exit status -15).
    assert process.returncode in (0, -signal.SIGTERM), output[-3000:]
    events = [json.loads(line).get("event") for line in output.splitlines() if line.startswith("{")]
    assert "payment_service_started" in events
    assert events.index("payment_service_stopping") < events.index("payment_service_stopped")
