"""Demo step about dead letters: a poison message is parked in the DLQ, listed and replayed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika

from shop_devstack.demo.context import DemoContext
from shop_devstack.demo.narration import expect

Observe = Callable[[str], None]
POISON_QUEUE = "payment.order-events"


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


async def poison_message(ctx: DemoContext, observe: Observe) -> None:
    """A message no consumer can decode goes to the DLQ with its error and attempt count (never
    redelivered forever, never dropped); the DLQ tool lists it and replays it to its exchange."""
    url = str(ctx.system.state.get("amqp_url") or "")
    expect(bool(url), "needs the local launcher (make up): the broker is not reachable from here")
    message_id = uuid.uuid4().hex
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange("orders")
        await exchange.publish(
            aio_pika.Message(
                b"{this is not an event", message_id=message_id, content_type="application/json"
            ),
            routing_key="order.created",
        )
    finally:
        await connection.close()
    observe(
        f"published an undecodable message {message_id[:8]}… to exchange orders, key order.created"
    )
    parked = await _find_in_dlq(url, POISON_QUEUE, message_id)
    expect(parked is not None, f"the poison message did not reach {POISON_QUEUE}.dlq")
    assert parked is not None
    observe(
        f"parked in {POISON_QUEUE}.dlq with headers {json.dumps(parked['headers'], default=str)[:200]}"
    )
    replay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shop_common.messaging.dlq",
        "replay",
        f"{POISON_QUEUE}.dlq",
        "--id",
        message_id,
        env={**os.environ, "AMQP_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await replay.communicate()
    observe(f"dlq replay: {output.decode().strip()[:200]}")
    expect(replay.returncode == 0, f"the replay command exited with {replay.returncode}")
    again = await _find_in_dlq(url, POISON_QUEUE, message_id)
    observe("replayed to its exchange; still undecodable, so it is parked again (no loop, no loss)")
    expect(again is not None, "the replayed poison message was lost")
