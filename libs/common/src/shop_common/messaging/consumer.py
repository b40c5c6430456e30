"""Consumer with manual ack, prefetch, a concurrency limit and explicit outcomes.

ack on success; RetryableError (or any unexpected exception) → the next delay tier, until
max_attempts; PermanentError, an undecodable body or the last attempt → the queue's DLQ with
error, attempts, original exchange and routing key in headers. Nothing is dropped: a failed
retry/DLQ publish falls back to reject (the work queue dead-letters to its DLQ) or requeue.
Tracing: the request id is bound again, retries and DLQ parkings are consume-span events.
Acks go in runs (acks.py). The module is long because the outcome paths (ack, retry tier, DLQ,
and the fallback when a forward is not confirmed) only make sense read together.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from prometheus_client import Counter
from pydantic import ValidationError

from shop_common.logging import get_logger
from shop_common.messaging.acks import AckWindow
from shop_common.messaging.context import message_context
from shop_common.messaging.events import PAYLOAD_TYPES, EventEnvelope
from shop_common.messaging.outcomes import (
    ATTEMPTS_HEADER,
    DEAD_LETTERED_AT_HEADER,
    ERROR_HEADER,
    FAILED_QUEUE_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REPLAYED_HEADER,
    DeliveryInfo,
    Handler,
    PermanentError,
)
from shop_common.messaging.publisher import Publisher, PublishError, headers_of
from shop_common.messaging.topology import SHOP_TOPOLOGY, QueueSpec, Topology, declare
from shop_common.observability.propagation import span_attributes, span_event

log = get_logger(__name__)

MESSAGES_CONSUMED = Counter(
    "shop_messages_consumed_total",
    "Messages consumed, by queue and outcome (ack, retry, dead_letter, requeue).",
    ["queue", "outcome"],
)
_MAX_ERROR_CHARS = 500


class Consumer:
    """Consumes one work queue of the topology with a typed handler."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue_name: str,
        handler: Handler,
        *,
        prefetch: int = 32,
        concurrency: int = 16,
        max_attempts: int = 5,
        topology: Topology = SHOP_TOPOLOGY,
        ack_linger: float = 0.02,
    ) -> None:
        if max_attempts < 1 or concurrency < 1 or prefetch < 1:
            raise ValueError("prefetch, concurrency and max_attempts must be >= 1")
        # Acks go in runs (messaging/acks.py); a quarter of the prefetch window may wait.
        self._acks = AckWindow(linger=ack_linger, max_pending=max(1, prefetch // 4))
        self._connection = connection
        self._spec: QueueSpec = topology.queue(queue_name)
        if self._spec.tap:
            raise ValueError(
                f"{queue_name} is a tap (no retry tiers, no DLQ): declare a work queue"
            )
        self._topology = topology
        self._handler = handler
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._slots = asyncio.Semaphore(concurrency)
        self._publisher = Publisher(connection)
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        """Messages being handled now."""
        return self._in_flight

    async def start(self) -> None:
        """Declare the queue's part of the topology and start consuming."""
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        queues = await declare(self._channel, self._topology.only(self._spec.name))
        self._queue = queues[self._spec.name]
        self._tag = await self._queue.consume(self._on_message, no_ack=False)
        log.info("consuming", queue=self._spec.name, prefetch=self._prefetch)

    async def stop(self) -> None:
        """Stop taking messages, finish those in flight, close the channel."""
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception as error:  # the channel may already be gone; in-flight still finish
                log.warning("basic_cancel_failed", queue=self._spec.name, error=repr(error))
        self._tag = None
        await self._idle.wait()
        await self._acks.flush_all()
        await self._publisher.close()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._acks.delivered(message)
        async with self._slots:
            self._began(1)
            try:
                with message_context(message.headers or {}, message.message_id or ""):
                    await self._process(message)
            finally:
                self._done(1)

    def _began(self, count: int) -> None:
        """count messages are in hand (stop() waits for them)."""
        self._in_flight += count
        self._idle.clear()

    def _done(self, count: int) -> None:
        """count messages in hand are settled."""
        self._in_flight -= count
        if self._in_flight == 0:
            self._idle.set()

    async def _decode(
        self, message: AbstractIncomingMessage
    ) -> tuple[EventEnvelope, DeliveryInfo] | None:
        """The message's envelope (its payload validated) and delivery: the attempt, and the
        exchange and routing key it was first published with (a retried copy comes back from a
        delay tier); None once an undecodable message is dead-lettered."""
        headers = headers_of(message.headers)
        info = DeliveryInfo(
            queue=self._spec.name,
            exchange=str(headers.get(ORIGINAL_EXCHANGE_HEADER, message.exchange or "")),
            routing_key=str(headers.get(ORIGINAL_ROUTING_KEY_HEADER, message.routing_key or "")),
            attempt=int(headers.get(ATTEMPTS_HEADER, 0)) + 1,
            redelivered=bool(message.redelivered),
            message_id=message.message_id,
            headers=headers,
        )
        replayed = int(headers.get(REPLAYED_HEADER, 0))
        span_attributes({"messaging.attempt": info.attempt, "messaging.replayed": replayed})
        try:
            envelope = EventEnvelope.from_json(message.body)
            payload_type = PAYLOAD_TYPES.get(envelope.event_type)
            if payload_type is not None:
                envelope.payload_as(payload_type)
        except ValidationError as error:
            reason = f"undecodable: {error}"
            await self._dead_letter(message, reason, info.attempt, info.exchange, info.routing_key)
            return None
        return envelope, info

    async def _process(self, message: AbstractIncomingMessage) -> None:
        decoded = await self._decode(message)
        if decoded is None:
            return
        envelope, info = decoded
        attempt, exchange, routing_key = info.attempt, info.exchange, info.routing_key
        try:
            await self._handler(envelope, info)
        except PermanentError as error:
            await self._dead_letter(message, f"permanent: {error}", attempt, exchange, routing_key)
        except Exception as error:  # unexpected errors are retried, never lost
            reason = f"{type(error).__name__}: {error}"
            if attempt >= self._max_attempts:
                await self._dead_letter(message, reason, attempt, exchange, routing_key)
            else:
                await self._retry(message, reason, attempt, exchange, routing_key)
        else:
            await self._acks.ack(message)
            MESSAGES_CONSUMED.labels(self._spec.name, "ack").inc()

    async def _retry(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        attempt: int,
        exchange: str,
        routing_key: str,
    ) -> None:
        tier = min(attempt - 1, len(self._spec.retry_delays_ms) - 1)
        log.info("retrying", queue=self._spec.name, attempt=attempt, tier=tier, error=reason)
        span_event("message.retry", {"queue": self._spec.name, "attempt": attempt, "tier": tier})
        copy = _copy(message, attempt, reason, exchange, routing_key)
        await self._forward(message, self._spec.retry_queue(tier), copy, "retry")

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        attempt: int,
        exchange: str,
        routing_key: str,
    ) -> None:
        log.warning("dead_lettering", queue=self._spec.name, attempt=attempt, error=reason)
        span_event("message.dead_lettered", {"queue": self._spec.dlq, "attempt": attempt})
        copy = _copy(message, attempt, reason, exchange, routing_key)
        assert copy.headers is not None
        copy.headers[FAILED_QUEUE_HEADER] = self._spec.name
        copy.headers[DEAD_LETTERED_AT_HEADER] = datetime.now(UTC).isoformat()
        await self._forward(message, self._spec.dlq, copy, "dead_letter")

    async def _forward(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        copy: aio_pika.Message,
        outcome: str,
    ) -> None:
        try:
            await self._publisher.publish_message("", queue, copy)
        except PublishError as error:
            # The copy is not confirmed: keep the original. reject → the work queue's DLX (DLQ)
            # for dead letters; requeue for retries, so the message is tried again later.
            log.error("forward_failed", queue=self._spec.name, target=queue, error=str(error))
            self._acks.settled(message)
            try:
                if outcome == "dead_letter":
                    await message.reject(requeue=False)
                else:
                    await message.nack(requeue=True)
            except Exception as settle_error:  # channel gone: the broker redelivers it
                log.error("settle_failed", queue=self._spec.name, error=repr(settle_error))
            MESSAGES_CONSUMED.labels(self._spec.name, "requeue").inc()
            return
        await self._acks.ack(message)
        MESSAGES_CONSUMED.labels(self._spec.name, outcome).inc()


def _copy(
    message: AbstractIncomingMessage,
    attempt: int,
    reason: str,
    exchange: str,
    routing_key: str,
) -> aio_pika.Message:
    headers = headers_of(message.headers)
    headers.update(
        {
            ATTEMPTS_HEADER: attempt,
            ERROR_HEADER: reason[:_MAX_ERROR_CHARS],
            ORIGINAL_EXCHANGE_HEADER: exchange,
            ORIGINAL_ROUTING_KEY_HEADER: routing_key,
        }
    )
    return aio_pika.Message(
        body=message.body,
        headers=dict(headers),
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        priority=message.priority,
    )
