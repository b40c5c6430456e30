"""Handlers of `catalog.order-events`, the saga's stock side (shop_common.messaging.handlers).

- order.created → reserve every line once (inbox + outbox in one statement): stock.reserved
  (the payment service then charges) or stock.rejected (the order becomes REJECTED);
- order.paid → confirm: the reservation no longer expires;
- order.payment_failed, order.cancelled → release once (stock.released): a failed payment, a
  cancellation while PENDING, or a cancellation after PAID (refund and restock).

order.created and order.paid also come in batches (shop_common.messaging.batch): `settle_batch`
reserves a run of orders and confirms a run of payments in one transaction (Reservations.settle),
which is how they are handled under load; the handlers above are the one-at-a-time path (a
single message, a retry, a batch that failed).

A bad payload or an event type this queue does not take goes to the DLQ; a database outage is
retried through the delay tiers.
"""

from __future__ import annotations

from collections.abc import Sequence

from shop_common.messaging.batch import BatchHandler, BatchItem
from shop_common.messaging.events import OrderCancelled, OrderCreated, OrderStatusChanged
from shop_common.messaging.handlers import Handlers, Incoming
from shop_common.messaging.outcomes import PermanentError

from catalog_service.domain.errors import InvalidQuantityError, UnknownSkuError
from catalog_service.service_layer.reservations import INBOX_CONSUMER, Reservations

QUEUE = INBOX_CONSUMER
order_events = Handlers[Reservations](QUEUE)
# The event types settle_batch takes many at a time.
BATCHED = frozenset({"order.created", "order.paid"})


def settle_batch(reservations: Reservations) -> BatchHandler:
    """The batch handler: the reservations of a run of order.created and the confirmations of
    a run of order.paid, in one transaction. An order whose lines no reservation can hold is
    left to the one-at-a-time path, which sends it to the DLQ."""

    async def settle(items: Sequence[BatchItem]) -> list[BatchItem]:
        requests, confirms, left = [], [], []
        for item in items:
            envelope = item.envelope
            if envelope.event_type == "order.paid":
                confirms.append(envelope.payload_as(OrderStatusChanged).order_id)
                continue
            try:
                with item.traced():  # the events' outbox rows go on with the order's trace
                    requests.append(
                        reservations.prepare(envelope, envelope.payload_as(OrderCreated))
                    )
            except (InvalidQuantityError, UnknownSkuError):
                left.append(item)
        await reservations.settle(requests, confirms)
        return left

    return settle


@order_events.handles("order.created")
async def reserve(event: OrderCreated, reservations: Reservations, msg: Incoming) -> str:
    """Hold the order's stock (or reject it), once."""
    try:
        outcome = await reservations.reserve_for_order(msg.envelope, event)
    except (InvalidQuantityError, UnknownSkuError) as exc:  # waiting will not fix the lines
        raise PermanentError(str(exc)) from exc
    return "duplicate" if outcome is None else outcome.reservation.status.value


@order_events.handles("order.paid")
async def confirm(event: OrderStatusChanged, reservations: Reservations, msg: Incoming) -> bool:
    """The order is paid: its stock is kept for good."""
    return await reservations.confirm(event.order_id)


@order_events.handles("order.payment_failed")
async def release_unpaid(
    event: OrderStatusChanged, reservations: Reservations, msg: Incoming
) -> bool:
    """The payment failed (or the saga timed out): the stock goes back, once."""
    return await reservations.release(event.order_id, reason="payment_failed", cause=msg.envelope)


@order_events.handles("order.cancelled")
async def release_cancelled(
    event: OrderCancelled, reservations: Reservations, msg: Incoming
) -> bool:
    """The order was cancelled (before or after payment): the stock goes back, once."""
    return await reservations.release(event.order_id, reason="cancelled", cause=msg.envelope)
