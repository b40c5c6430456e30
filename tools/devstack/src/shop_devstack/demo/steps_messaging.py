"""Demo step about dead letters: a poison message is parked in the DLQ, listed and replayed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aio_pika

from shop_devstack.compose_control import ComposeControl
from shop_devstack.demo.context import DemoContext
from shop_devstack.demo.narration import expect

Observe = Callable[[str], None]
POISON_QUEUE = "payment.order-events"
POISON_EXCHANGE = "catalog"  # stock.reserved: what the payment service charges on
POISON_KEY = "stock.reserved"
POISON_BODY = b"{this is not an event"


async def _find_in_dlq(
    url: str, queue: str, message_id: str, within: float = 30.0
) -> dict[str, Any] | None:
    """Look at the DLQ (get + nack with requeue, so nothing is consumed) until the message shows."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        dlq = await channel.get_queue(f"{queue}.dlq", ensure=True)
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            seen: list[aio_pika.abc.AbstractIncomingMessage] = []
            found = None
            while (message := await dlq.get(no_ack=False, fail=False)) is not None:
                seen.append(message)
                if message.message_id == message_id:
                    found = {"headers": dict(message.headers), "body": message.body[:80]}
            for message in seen:
                await message.nack(requeue=True)
            if found:
                return found
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    return None


class Broker(Protocol):
    """What the step does with the broker: publish, look into a DLQ, run the replay tool."""

    async def publish_poison(self, message_id: str) -> None: ...
    async def find_in_dlq(self, queue: str, message_id: str) -> dict[str, Any] | None: ...
    async def replay(self, queue: str, message_id: str) -> tuple[int, str]: ...


@dataclass(frozen=True)
class AmqpBroker:
    """The launcher's broker, over AMQP with the URL from its state file."""

    url: str

    async def publish_poison(self, message_id: str) -> None:
        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(POISON_EXCHANGE)
            await exchange.publish(
                aio_pika.Message(
                    POISON_BODY, message_id=message_id, content_type="application/json"
                ),
                routing_key=POISON_KEY,
            )
        finally:
            await connection.close()

    async def find_in_dlq(self, queue: str, message_id: str) -> dict[str, Any] | None:
        return await _find_in_dlq(self.url, queue, message_id)

    async def replay(self, queue: str, message_id: str) -> tuple[int, str]:
        replay = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shop_common.messaging.dlq",
            "replay",
            f"{queue}.dlq",
            "--id",
            message_id,
            env={**os.environ, "AMQP_URL": self.url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await replay.communicate()
        return int(replay.returncode or 0), output.decode()


@dataclass(frozen=True)
class ComposeBroker:
    """A compose stack's broker: its management API, and the DLQ tool run in a container."""

    compose: ComposeControl

    async def publish_poison(self, message_id: str) -> None:
        properties = {"message_id": message_id, "content_type": "application/json"}
        routed = await self.compose.publish(POISON_EXCHANGE, POISON_KEY, POISON_BODY, properties)
        expect(routed, f"the broker routed the message from {POISON_EXCHANGE} to no queue")

    async def find_in_dlq(
        self, queue: str, message_id: str, within: float = 30.0
    ) -> dict[str, Any] | None:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for message in await self.compose.peek(f"{queue}.dlq"):
                properties = message.get("properties") or {}
                if properties.get("message_id") == message_id:
                    return {
                        "headers": properties.get("headers") or {},
                        "body": str(message.get("payload", ""))[:80],
                    }
            await asyncio.sleep(0.5)
        return None

    async def replay(self, queue: str, message_id: str) -> tuple[int, str]:
        return await self.compose.dlq_tool("replay", f"{queue}.dlq", "--id", message_id)


def broker_of(ctx: DemoContext) -> Broker | None:
    """The broker of the system the demo runs against, when it can be reached from here."""
    url = str(ctx.system.state.get("amqp_url") or "")
    if url:
        return AmqpBroker(url)
    if ctx.system.compose is not None:
        return ComposeBroker(ctx.system.compose)
    return None


async def poison_message(ctx: DemoContext, observe: Observe) -> None:
    """A message no consumer can decode goes to the DLQ with its error and attempt count (never
    redelivered forever, never dropped); the DLQ tool lists it and replays it to its exchange."""
    broker = broker_of(ctx)
    expect(
        broker is not None,
        "needs the local launcher (make up) or a compose stack (make compose-up): "
        "the broker is not reachable from here",
    )
    assert broker is not None
    message_id = uuid.uuid4().hex
    await broker.publish_poison(message_id)
    observe(
        f"published an undecodable message {message_id[:8]}… to exchange {POISON_EXCHANGE}, "
        f"key {POISON_KEY}"
        + (" (RabbitMQ management API)" if isinstance(broker, ComposeBroker) else "")
    )
    parked = await broker.find_in_dlq(POISON_QUEUE, message_id)
    expect(parked is not None, f"the poison message did not reach {POISON_QUEUE}.dlq")
    assert parked is not None
    observe(
        f"parked in {POISON_QUEUE}.dlq with headers {json.dumps(parked['headers'], default=str)[:200]}"
    )
    code, output = await broker.replay(POISON_QUEUE, message_id)
    where = " (docker compose exec payment)" if isinstance(broker, ComposeBroker) else ""
    observe(f"dlq replay{where}: {output.strip()[:200]}")
    expect(code == 0, f"the replay command exited with {code}")
    again = await broker.find_in_dlq(POISON_QUEUE, message_id)
    observe("replayed to its exchange; still undecodable, so it is parked again (no loop, no loss)")
    expect(again is not None, "the replayed poison message was lost")
