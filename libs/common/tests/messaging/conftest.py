"""Fixtures for the messaging tests: a connection to the test's own vhost and a fast topology."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest_asyncio
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from shop_common.messaging import SHOP_TOPOLOGY, Topology, connect, declare
from shop_testing.wait import eventually

# Delay tiers of a few tens of milliseconds so a retry test takes well under a second.
FAST_TOPOLOGY = Topology(
    exchanges=SHOP_TOPOLOGY.exchanges,
    queues=tuple(
        dataclasses.replace(spec, retry_delays_ms=(20, 40, 80)) for spec in SHOP_TOPOLOGY.queues
    ),
    priorities=SHOP_TOPOLOGY.priorities,
)


@pytest_asyncio.fixture
async def connection(amqp_vhost_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection to the test's fresh vhost with the topology declared."""
    conn = await connect(amqp_vhost_url, attempts=3, name="messaging-test", reconnect_interval=0.2)
    channel = await conn.channel()
    await declare(channel, FAST_TOPOLOGY)
    await channel.close()
    yield conn
    await conn.close()


async def queue_depth(conn: AbstractRobustConnection, name: str) -> int:
    """Messages ready in a queue (passive declare)."""
    channel = await conn.channel()
    try:
        queue: AbstractQueue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def get_one(
    conn: AbstractRobustConnection, name: str, *, timeout: float = 20.0
) -> aio_pika.abc.AbstractIncomingMessage:
    """Fetch (and ack) one message from a queue, waiting up to timeout."""
    channel = await conn.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        got: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def arrived() -> bool:
            message = await queue.get(fail=False, no_ack=True)
            if message is not None:
                got.append(message)
            return bool(got)

        await eventually(arrived, timeout=timeout, interval=0.02, what=f"a message in {name}")
        return got[0]
    finally:
        await channel.close()


def close_vhost_connections(amqp_vhost_url: str) -> int:
    """Close only the broker connections of this test's vhost (others' tests share the broker)."""
    vhost = unquote(urlsplit(amqp_vhost_url).path.lstrip("/"))
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "vhost"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    closed = 0
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[1] == vhost:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", parts[0], "test: dropped connection"],
                check=False,
                capture_output=True,
                timeout=30,
            )
            closed += 1
    return closed


class CuttableProxy:
    """A loopback TCP proxy to the broker that the test can cut (refuse + reset) and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and reset every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update({client_w, broker_w})
        await asyncio.gather(self._pipe(client_r, broker_w), self._pipe(broker_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


def via_proxy(amqp_vhost_url: str, port: int) -> str:
    """The vhost URL rewritten to go through a local proxy port."""
    parts = urlsplit(amqp_vhost_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


def broker_address(amqp_vhost_url: str) -> tuple[str, int]:
    """Host and port of the broker under test."""
    parts = urlsplit(amqp_vhost_url)
    return parts.hostname or "127.0.0.1", parts.port or 5672
