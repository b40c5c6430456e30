"""Saga events as the services' tests build them: one helper, not a copy per test module."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

from shop_common.messaging.events import EventEnvelope, OrderCreated, OrderItem, new_event


def order_created(
    *lines: tuple[str, int], unit_price: Decimal = Decimal("1.00"), user_id: int = 7
) -> tuple[EventEnvelope, OrderCreated]:
    """An order.created envelope (correlated by its order) and its payload: every line at
    unit_price, the total their sum."""
    order = OrderCreated(
        order_id=uuid4(),
        user_id=user_id,
        items=[OrderItem(sku=sku, quantity=q, unit_price=unit_price) for sku, q in lines],
        total=unit_price * sum(q for _, q in lines),
        currency="EUR",
    )
    return new_event("order.created", order, correlation_id=str(order.order_id)), order
