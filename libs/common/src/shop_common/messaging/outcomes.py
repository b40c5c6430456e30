"""Handler outcomes and the headers that record a message's retry and dead-letter history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from shop_common.messaging.events import EventEnvelope

ATTEMPTS_HEADER = "x-attempts"
ERROR_HEADER = "x-error"
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
FAILED_QUEUE_HEADER = "x-failed-queue"
DEAD_LETTERED_AT_HEADER = "x-dead-lettered-at"
REPLAYED_HEADER = "x-replayed"


class RetryableError(Exception):
    """A failure that may pass later: the message goes to the next delay tier."""


class PermanentError(Exception):
    """A failure that will not pass by waiting: the message goes to the DLQ now."""


@dataclass(frozen=True)
class DeliveryInfo:
    """What the handler may know about the delivery besides the envelope."""

    queue: str
    exchange: str
    routing_key: str
    attempt: int
    redelivered: bool
    message_id: str | None
    headers: Mapping[str, object] = field(default_factory=dict)


Handler = Callable[[EventEnvelope, DeliveryInfo], Awaitable[None]]
