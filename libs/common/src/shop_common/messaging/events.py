"""Event envelope and payload models shared by every service (the wire contract of DESIGN.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, field_validator

PayloadT = TypeVar("PayloadT", bound=BaseModel)

# Money travels as a string so no consumer ever parses it into a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: str(value), return_type=str, when_used="always"),
    Field(json_schema_extra={"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}),
]


class EventEnvelope(BaseModel):
    """One event on the wire: JSON body of every AMQP message (message_id = event_id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str = Field(min_length=1, description="Equals the routing key, e.g. order.created.")
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    version: int = Field(default=1, ge=1)
    correlation_id: str | None = None
    causation_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def payload_as(self, model: type[PayloadT]) -> PayloadT:
        """Validate the payload into its typed model (raises pydantic.ValidationError)."""
        return model.model_validate(self.payload)

    def to_json(self) -> bytes:
        """Serialise for the wire (RFC 3339 UTC timestamp, money as strings)."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> EventEnvelope:
        """Parse a wire body (raises pydantic.ValidationError when it is not an envelope)."""
        return cls.model_validate_json(body)


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UserChanged(_Payload):
    """Payload of user.created and user.updated."""

    user_id: int
    email: str
    name: str
    roles: list[str]


class UserDeleted(_Payload):
    """Payload of user.deleted."""

    user_id: int


class OrderItem(_Payload):
    """One line of an order."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    unit_price: Money


class OrderCreated(_Payload):
    """Payload of order.created."""

    order_id: uuid.UUID
    user_id: int
    items: list[OrderItem]
    total: Money
    currency: str = Field(min_length=3, max_length=3)


class OrderCancelled(_Payload):
    """Payload of order.cancelled (refund_required when the order had been paid)."""

    order_id: uuid.UUID
    user_id: int
    refund_required: bool


class OrderStatusChanged(_Payload):
    """Payload of order.paid, order.payment_failed, order.refunded and order.rejected."""

    order_id: uuid.UUID
    status: str


class PaymentSucceeded(_Payload):
    """Payload of payment.succeeded."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount: Money
    currency: str = Field(min_length=3, max_length=3)


class PaymentFailed(_Payload):
    """Payload of payment.failed."""

    order_id: uuid.UUID
    reason: str


class PaymentRefunded(_Payload):
    """Payload of payment.refunded."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount: Money
    currency: str = Field(min_length=3, max_length=3)


class ProductPriceChanged(_Payload):
    """Payload of product.price_changed (an admin set a new price; the next order pays it)."""

    sku: str = Field(min_length=1)
    old_price: Money
    new_price: Money
    currency: str = Field(min_length=3, max_length=3)


class StockChanged(_Payload):
    """Payload of stock.changed: a sku's available stock after a change of `delta` units."""

    sku: str = Field(min_length=1)
    available: int = Field(ge=0)
    delta: int
    reason: str


class StockLine(_Payload):
    """One sku and quantity of a stock reservation."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class StockReserved(_Payload):
    """Payload of stock.reserved: every line of the order is held, so it may be charged (what
    the payment service charges travels with it: the order's user, total and currency)."""

    order_id: uuid.UUID
    user_id: int
    items: list[StockLine]
    total: Money
    currency: str = Field(min_length=3, max_length=3)


class StockRejected(_Payload):
    """Payload of stock.rejected: the order's lines could not all be held (nothing was taken)."""

    order_id: uuid.UUID
    reason: str
    sku: str | None = None


class StockReleased(_Payload):
    """Payload of stock.released: the order's held stock is back on the shelf, once. `reason`:
    expired (the reservation timed out unconfirmed), payment_failed or cancelled."""

    order_id: uuid.UUID
    reason: str
    items: list[StockLine]


PAYLOAD_TYPES: dict[str, type[BaseModel]] = {
    "user.created": UserChanged,
    "user.updated": UserChanged,
    "user.deleted": UserDeleted,
    "order.created": OrderCreated,
    "order.cancelled": OrderCancelled,
    "order.paid": OrderStatusChanged,
    "order.payment_failed": OrderStatusChanged,
    "order.refunded": OrderStatusChanged,
    "order.rejected": OrderStatusChanged,
    "payment.succeeded": PaymentSucceeded,
    "payment.failed": PaymentFailed,
    "payment.refunded": PaymentRefunded,
    "product.price_changed": ProductPriceChanged,
    "stock.changed": StockChanged,
    "stock.reserved": StockReserved,
    "stock.rejected": StockRejected,
    "stock.released": StockReleased,
}


def new_event(
    event_type: str,
    payload: BaseModel,
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> EventEnvelope:
    """Build an envelope; the payload must be the model registered for event_type."""
    expected = PAYLOAD_TYPES.get(event_type)
    if expected is not None and not isinstance(payload, expected):
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(payload).__name__}")
    return EventEnvelope(
        event_type=event_type,
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=payload.model_dump(mode="json"),
    )


def decode_payload(envelope: EventEnvelope) -> BaseModel:
    """The typed payload for a known event_type (KeyError for an unknown one)."""
    return envelope.payload_as(PAYLOAD_TYPES[envelope.event_type])
