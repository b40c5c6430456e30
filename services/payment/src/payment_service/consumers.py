"""Handlers of `payment.order-events`: charge on order.created, refund on order.cancelled.

A provider outage goes to the retry tiers (RetryableError); a bad payload or an event type this
queue does not take goes to the DLQ (shop_common.messaging.handlers).
"""

from __future__ import annotations

from shop_common.messaging.events import OrderCancelled, OrderCreated
from shop_common.messaging.handlers import Handlers, Incoming

from payment_service.provider.simulated import ProviderUnavailableError
from payment_service.service_layer.payments import PaymentService

QUEUE = "payment.order-events"
order_events = Handlers[PaymentService](QUEUE, retryable=(ProviderUnavailableError,))


@order_events.handles("order.created")
async def charge(event: OrderCreated, service: PaymentService, msg: Incoming) -> bool:
    """Charge the order once (its inbox row makes a redelivery a no-op)."""
    return await service.handle_order_created(msg.envelope, event)


@order_events.handles("order.cancelled")
async def refund(event: OrderCancelled, service: PaymentService, msg: Incoming) -> bool:
    """Refund a succeeded charge once; nothing when there is none."""
    return await service.handle_order_cancelled(msg.envelope, event)
