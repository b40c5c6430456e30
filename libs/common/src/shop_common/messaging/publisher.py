"""Publisher with confirms, persistent delivery and mandatory routing; failures raise, fast."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection, HeadersType

from shop_common.messaging.connection import is_connected
from shop_common.messaging.context import context_headers
from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.topology import SHOP_TOPOLOGY

CONTENT_TYPE = "application/json"


class PublishError(Exception):
    """The broker did not confirm the message (down, reconnecting, nack or timeout)."""


class UnroutableError(PublishError):
    """The exchange had no queue bound for the routing key (mandatory message returned)."""


def build_message(
    envelope: EventEnvelope,
    *,
    headers: Mapping[str, str | int] | None = None,
    priority: int | None = None,
    expiration: float | timedelta | None = None,
) -> aio_pika.Message:
    """The AMQP message of an envelope: message_id = event_id, persistent, JSON, the request
    id and the current trace context in headers (the aio-pika instrumentation, when tracing is
    on, replaces traceparent with its publish span's)."""
    merged: dict[str, str | int] = {**context_headers(), **(headers or {})}
    return aio_pika.Message(
        body=envelope.to_json(),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.event_id),
        correlation_id=envelope.correlation_id,
        timestamp=envelope.occurred_at,
        type=envelope.event_type,
        headers=dict(merged),
        priority=priority,
        expiration=expiration,
    )


class Publisher:
    """Publishes envelopes on one confirm channel of a robust connection."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        *,
        confirm_timeout: float = 5.0,
        priorities: Mapping[str, int] = SHOP_TOPOLOGY.priorities,
    ) -> None:
        self._connection = connection
        self._confirm_timeout = confirm_timeout
        self._priorities = priorities
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def publish(
        self,
        exchange: str,
        envelope: EventEnvelope,
        *,
        routing_key: str | None = None,
        headers: Mapping[str, str | int] | None = None,
        priority: int | None = None,
        expiration: float | timedelta | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm; raises UnroutableError / PublishError."""
        key = routing_key or envelope.event_type
        if priority is None:
            priority = self._priorities.get(key)
        message = build_message(envelope, headers=headers, priority=priority, expiration=expiration)
        await self.publish_message(exchange, key, message)

    async def publish_message(
        self, exchange: str, routing_key: str, message: aio_pika.Message
    ) -> None:
        """Publish a prepared message with confirm (used for retries, DLQ and replay too)."""
        if not is_connected(self._connection):
            raise PublishError("broker connection is down (reconnecting); message not published")
        try:
            async with asyncio.timeout(self._confirm_timeout):
                channel = await self._get_channel()
                target = (
                    channel.default_exchange
                    if exchange == ""
                    else await channel.get_exchange(exchange, ensure=False)
                )
                await target.publish(message, routing_key=routing_key, mandatory=True)
        except aiormq.exceptions.PublishError as error:
            raise UnroutableError(
                f"no queue bound to exchange {exchange!r} for routing key {routing_key!r}"
            ) from error
        except aiormq.exceptions.DeliveryError as error:
            raise PublishError(f"broker refused the message (nack): {error}") from error
        except TimeoutError as error:
            raise PublishError(f"no publisher confirm within {self._confirm_timeout}s") from error
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as error:
            raise PublishError(f"publish failed: {error!r}") from error

    async def _get_channel(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            return self._channel

    async def close(self) -> None:
        """Close the publishing channel (the connection belongs to the caller)."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None


def headers_of(message_headers: HeadersType | None) -> dict[str, str | int]:
    """AMQP headers as plain str/int values (bytes decoded) for re-publishing."""
    plain: dict[str, str | int] = {}
    for key, value in (message_headers or {}).items():
        if isinstance(value, bytes):
            plain[key] = value.decode(errors="replace")
        elif isinstance(value, bool | int):
            plain[key] = int(value)
        elif value is not None:
            plain[key] = str(value)
    return plain
