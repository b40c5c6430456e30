"""The order.* events the use cases emit, as envelopes (shop_common.messaging.events).

Every order event is correlated by its order id; one caused by an incoming event names it as
its causation.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    OrderStatusChanged,
    new_event,
)

from order_service.domain.order import EVENT_OF_STATUS, Order, OrderStatus


def _envelope(
    event_type: str, payload: BaseModel, order_id: UUID, causation: EventEnvelope | None
) -> EventEnvelope:
    return new_event(
        event_type,
        payload,
        correlation_id=str(order_id),
        causation_id=str(causation.event_id) if causation else None,
    )


def order_created(order: Order) -> EventEnvelope:
    """order.created: the lines, total and currency the payment service charges."""
    items = [
        OrderItem(sku=x.sku, quantity=x.quantity, unit_price=x.unit_price) for x in order.lines
    ]
    payload = OrderCreated(
        order_id=order.id,
        user_id=order.user_id,
        items=items,
        total=order.total,
        currency=order.currency,
    )
    return _envelope("order.created", payload, order.id, None)


def status_changed(
    order_id: UUID, status: OrderStatus, causation: EventEnvelope | None = None
) -> EventEnvelope:
    """order.paid / order.payment_failed / order.refunded: the order arrived in `status`.

    Not for the cancellations, whose payload needs the order (see `arrived`).
    """
    event_type = EVENT_OF_STATUS[status]
    if event_type == "order.cancelled":
        raise ValueError(f"{status} emits order.cancelled: use arrived(order)")
    return _envelope(
        event_type, OrderStatusChanged(order_id=order_id, status=status.value), order_id, causation
    )


def arrived(order: Order, causation: EventEnvelope | None = None) -> EventEnvelope:
    """The event of the state `order` has just arrived in."""
    if EVENT_OF_STATUS[order.status] != "order.cancelled":
        return status_changed(order.id, order.status, causation)
    payload = OrderCancelled(
        order_id=order.id, user_id=order.user_id, refund_required=order.refund_required
    )
    return _envelope("order.cancelled", payload, order.id, causation)


def refund_requested(order: Order, causation: EventEnvelope | None = None) -> EventEnvelope:
    """order.cancelled with refund_required: saga compensation for a charge that must go back."""
    payload = OrderCancelled(order_id=order.id, user_id=order.user_id, refund_required=True)
    return _envelope("order.cancelled", payload, order.id, causation)
