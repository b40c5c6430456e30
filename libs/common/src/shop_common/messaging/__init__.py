"""Messaging over RabbitMQ: events, topology, publisher, consumer, outbox, inbox, DLQ tools."""

from shop_common.messaging.connection import BrokerUnavailableError, connect, is_connected
from shop_common.messaging.consumer import Consumer
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
from shop_common.messaging.outbox import OUTBOX_DDL, OutboxRelay, OutboxRow, outbox_row
from shop_common.messaging.outcomes import DeliveryInfo, Handler, PermanentError, RetryableError
from shop_common.messaging.publisher import Publisher, PublishError, UnroutableError
from shop_common.messaging.topology import (
    PRIORITY_NORMAL,
    PRIORITY_REFUND,
    SHOP_TOPOLOGY,
    Binding,
    ExchangeSpec,
    QueueSpec,
    Topology,
    declare,
    exponential_delays,
)

__all__ = (
    "INBOX_DDL",
    "OUTBOX_DDL",
    "PAYLOAD_TYPES",
    "PRIORITY_NORMAL",
    "PRIORITY_REFUND",
    "SHOP_TOPOLOGY",
    "Binding",
    "BrokerUnavailableError",
    "Consumer",
    "DeliveryInfo",
    "EventEnvelope",
    "ExchangeSpec",
    "Handler",
    "OrderCancelled",
    "OrderCreated",
    "OrderItem",
    "OrderStatusChanged",
    "OutboxRelay",
    "OutboxRow",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentSucceeded",
    "PermanentError",
    "PublishError",
    "Publisher",
    "QueueSpec",
    "RetryableError",
    "Topology",
    "UnroutableError",
    "UserChanged",
    "UserDeleted",
    "claim_once",
    "connect",
    "declare",
    "decode_payload",
    "exponential_delays",
    "is_connected",
    "new_event",
    "outbox_row",
)
