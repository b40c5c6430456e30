"""The raw broker ceiling: aio-pika publish with confirms + consume with ack, in msgs/s."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import aio_pika

from shop_common.messaging.connection import connect


@dataclass(frozen=True)
class Ceiling:
    """Messages per second through one persistent queue (publish confirmed, consume acked)."""

    messages: int
    size_bytes: int
    seconds: float

    @property
    def msgs_per_s(self) -> float:
        """Round-trip throughput."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


async def measure_ceiling(
    url: str,
    *,
    messages: int = 5_000,
    size_bytes: int = 400,
    in_flight: int = 100,
    prefetch: int = 100,
    consume: bool = True,
) -> Ceiling:
    """Publish N persistent messages (in_flight confirms outstanding) while consuming and acking.

    consume=False measures publishing with confirms alone (the part an outbox relay does).
    """
    connection = await connect(url, attempts=3)
    try:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=prefetch)
        queue = await consume_channel.declare_queue(
            f"ceiling.{uuid.uuid4().hex[:8]}", durable=True, auto_delete=True
        )
        body = b"x" * size_bytes
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == messages:
                done.set()

        tag = await queue.consume(on_message) if consume else None
        slots = asyncio.Semaphore(in_flight)
        exchange = publish_channel.default_exchange

        async def publish_one() -> None:
            async with slots:
                await exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )

        started = time.perf_counter()
        await asyncio.gather(*(publish_one() for _ in range(messages)))
        if consume:
            await done.wait()
        elapsed = time.perf_counter() - started
        if tag is not None:
            await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        return Ceiling(messages=messages, size_bytes=size_bytes, seconds=elapsed)
    finally:
        await connection.close()
