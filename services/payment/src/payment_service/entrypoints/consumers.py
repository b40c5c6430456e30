"""Handlers of `payment.order-events`: charge on stock.reserved (the catalog holds every line of
the order, so it may be charged), refund on order.cancelled.

A provider outage goes to the retry tiers (RetryableError); a bad payload, an amount the payment
rules refuse, or an event type this queue does not take goes to the DLQ
(shop_common.messaging.handlers).
"""

from __future__ import annotations

from shop_common.messaging.events import OrderCancelled, StockReserved
from shop_common.messaging.handlers import Handlers, Incoming
from shop_common.messaging.outcomes import PermanentError

from payment_service.domain.errors import InvalidAmountError
from payment_service.service_layer.payments import INBOX_CONSUMER, PaymentService
from payment_service.service_layer.provider import ProviderUnavailableError

QUEUE = INBOX_CONSUMER  # "payment.order-events": stock.reserved (catalog), order.cancelled (orders)
order_events = Handlers[PaymentService](QUEUE, retryable=(ProviderUnavailableError,))


@order_events.handles("stock.reserved")
async def charge(event: StockReserved, service: PaymentService, msg: Incoming) -> bool:
    """Charge the order once (its inbox row makes a redelivery a no-op)."""
    try:
        return await service.handle_stock_reserved(msg.envelope, event)
    except InvalidAmountError as exc:  # waiting will not make the amount valid
        raise PermanentError(str(exc)) from exc


@order_events.handles("order.cancelled")
async def refund(event: OrderCancelled, service: PaymentService, msg: Incoming) -> bool:
    """Refund a succeeded charge once; nothing when there is none."""
    return await service.handle_order_cancelled(msg.envelope, event)
