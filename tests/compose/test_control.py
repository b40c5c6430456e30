"""The Docker-side fault controls that the fault scenarios use against compose
(shop_devstack.compose_control): a cut dependency drops open connections and refuses new ones,
for clients on the private network and through the published port alike; restore undoes it, and
undoing twice is harmless. (The crash control is proven by the 1,000-order scenario, which
asserts that Docker restarted the payment container.)
"""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from aiormq.exceptions import AMQPConnectionError
from shop_devstack.compose_control import ComposeControl
from shop_devstack.compose_stack import Running, StackError
from shop_testing.wait import eventually

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]

# Run inside the gateway container: one Redis PING over the private network; prints the outcome.
PING_REDIS = """
import socket
try:
    s = socket.create_connection(("redis", 6379), timeout=3)
    s.sendall(b"PING\\r\\n")
    print(s.recv(16).decode().strip() or "closed")
except OSError as exc:
    print(type(exc).__name__)
"""


def _control(compose_system: Running) -> ComposeControl:
    return ComposeControl.for_project(compose_system.stack.project)


def _ping_redis(control: ComposeControl) -> str:
    try:
        out = control.stack.output("exec", "-T", "gateway", "python", "-c", PING_REDIS)
    except StackError as exc:
        raise AssertionError(f"could not run the probe in the gateway container: {exc}") from exc
    return out.strip()


async def test_a_cut_redis_refuses_the_private_network_until_restored(
    compose_system: Running,
) -> None:
    control = _control(compose_system)
    assert await asyncio.to_thread(_ping_redis, control) == "+PONG"
    await control.cut("redis")
    try:
        await control.cut("redis")  # cutting twice is one cut
        refused = await asyncio.to_thread(_ping_redis, control)
        assert refused in ("ConnectionRefusedError", "ConnectionResetError"), refused
    finally:
        await control.restore("redis")
    await control.restore("redis")  # restoring what is not cut is harmless
    assert await asyncio.to_thread(_ping_redis, control) == "+PONG"


async def test_a_cut_rabbitmq_drops_open_connections_and_refuses_new_ones(
    compose_system: Running,
) -> None:
    control = _control(compose_system)
    amqp = control.state()["amqp_url"]
    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel()
        await control.cut("rabbitmq")
        try:
            with pytest.raises((AMQPConnectionError, ConnectionError, asyncio.TimeoutError)):
                await asyncio.wait_for(channel.declare_queue("", exclusive=True), 10)
            with pytest.raises((AMQPConnectionError, ConnectionError, asyncio.TimeoutError)):
                await asyncio.wait_for(aio_pika.connect(amqp), 10)
        finally:
            await control.restore("rabbitmq")
    finally:
        await connection.close()

    async def connects() -> bool:
        try:
            again = await aio_pika.connect(amqp)
        except (AMQPConnectionError, ConnectionError):
            return False
        await again.close()
        return True

    await eventually(connects, timeout=30, interval=0.5, what="AMQP connections accepted again")


def test_only_redis_and_rabbitmq_can_be_cut(compose_system: Running) -> None:
    with pytest.raises(StackError, match="cannot cut 'postgres'"):
        asyncio.run(_control(compose_system).cut("postgres"))
