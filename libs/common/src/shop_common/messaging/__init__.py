"""Messaging over RabbitMQ: events, topology, publisher, consumer, outbox, inbox, DLQ tools."""

from shop_common.messaging.events import (
    PAYLOAD_TYPES,
    EventEnvelope,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    OrderStatusChanged,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    UserChanged,
    UserDeleted,
    decode_payload,
    new_event,
)
from shop_common.messaging.inbox import INBOX_DDL, claim_once
from shop_common.messaging.outbox import OUTBOX_DDL, add_to_outbox

__all__ = (
    "INBOX_DDL",
    "OUTBOX_DDL",
    "PAYLOAD_TYPES",
    "EventEnvelope",
    "OrderCancelled",
    "OrderCreated",
    "OrderItem",
    "OrderStatusChanged",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentSucceeded",
    "UserChanged",
    "UserDeleted",
    "add_to_outbox",
    "claim_once",
    "decode_payload",
    "new_event",
)
