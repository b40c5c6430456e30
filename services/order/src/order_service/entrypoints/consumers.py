"""Typed handlers of the order service's queues (shop_common.messaging.handlers).

`order.payment-results`: the saga's results move the order (once, via the inbox): payment.*,
and from the catalog stock.rejected (PENDING → REJECTED: nothing was charged) and stock.released
(a PENDING order whose reservation expired → REJECTED; for an order that already ended, a
release is the catalog's half of its compensation and changes nothing here).
`order.user-changes`: user.updated/deleted evict the cached user (idempotent, so no inbox);
user.created has nothing cached (a new user's id was never handed out, so no "not found" for it
can be cached).
`order.catalog-changes`: product.price_changed evicts the cached price (idempotent, no inbox),
so the next order pays the new price.

payment.succeeded also comes in batches (shop_common.messaging.batch): `settle_payments` moves a
run of orders to PAID in one transaction (OrderService.moves); what it cannot move that way
(a duplicate, an order that stopped waiting and is owed a refund) takes the handler below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging.batch import BatchConsumer, BatchHandler, BatchItem
from shop_common.messaging.consumer import Consumer
from shop_common.messaging.events import (
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    ProductPriceChanged,
    StockRejected,
    StockReleased,
    UserChanged,
    UserDeleted,
)
from shop_common.messaging.handlers import Handlers, Incoming
from shop_common.messaging.topology import Topology

from order_service.domain.order import OrderStatus
from order_service.service_layer.orders import OrderService
from order_service.service_layer.prices import PriceBook
from order_service.service_layer.users import UserDirectory
from order_service.settings import Settings

payment_results = Handlers[OrderService]("order.payment-results")
user_changes = Handlers[UserDirectory]("order.user-changes")
user_changes.ignores("user.created")
catalog_changes = Handlers[PriceBook]("order.catalog-changes")
# The event types settle_payments takes many at a time.
BATCHED = frozenset({"payment.succeeded"})


def settle_payments(service: OrderService) -> BatchHandler:
    """The batch handler of order.payment-results: a run of payment.succeeded moves its orders
    to PAID in one transaction; the ones it leaves take the one-at-a-time handler."""

    async def settle(items: Sequence[BatchItem]) -> list[BatchItem]:
        moves = []
        for item in items:
            event = item.envelope.payload_as(PaymentSucceeded)
            with item.traced():  # order.paid goes on with the payment's trace
                moves.append(service.moves.prepare(item.envelope, event.order_id, OrderStatus.PAID))
        moved = await service.moves.apply(moves)
        return [item for item, done in zip(items, moved, strict=True) if not done]

    return settle


@payment_results.handles("payment.succeeded")
async def paid(event: PaymentSucceeded, service: OrderService, msg: Incoming) -> bool:
    return await service.apply_payment_result(msg.envelope, event.order_id, OrderStatus.PAID)


@payment_results.handles("payment.failed")
async def payment_failed(event: PaymentFailed, service: OrderService, msg: Incoming) -> bool:
    return await service.apply_payment_result(
        msg.envelope, event.order_id, OrderStatus.PAYMENT_FAILED, event.reason
    )


@payment_results.handles("payment.refunded")
async def refunded(event: PaymentRefunded, service: OrderService, msg: Incoming) -> bool:
    return await service.apply_payment_result(msg.envelope, event.order_id, OrderStatus.REFUNDED)


@payment_results.handles("stock.rejected")
async def stock_rejected(event: StockRejected, service: OrderService, msg: Incoming) -> bool:
    return await service.apply_payment_result(
        msg.envelope, event.order_id, OrderStatus.REJECTED, event.reason
    )


@payment_results.handles("stock.released")
async def stock_released(event: StockReleased, service: OrderService, msg: Incoming) -> bool:
    return await service.apply_payment_result(
        msg.envelope, event.order_id, OrderStatus.REJECTED, f"stock released: {event.reason}"
    )


@user_changes.handles("user.updated")
async def user_updated(event: UserChanged, lookup: UserDirectory, msg: Incoming) -> int:
    await lookup.evict(event.user_id)
    return event.user_id


@user_changes.handles("user.deleted")
async def user_deleted(event: UserDeleted, lookup: UserDirectory, msg: Incoming) -> int:
    await lookup.evict(event.user_id)
    return event.user_id


@catalog_changes.handles("product.price_changed")
async def price_changed(event: ProductPriceChanged, prices: PriceBook, msg: Incoming) -> str:
    await prices.forget(event.sku)
    return event.sku


def queue_consumer(
    broker: AbstractRobustConnection,
    queue: str,
    settings: Settings,
    topology: Topology,
    orders: OrderService,
    users: UserDirectory,
    prices: PriceBook,
) -> Consumer:
    """The consumer of one of the service's queues, with its handlers bound; the payment
    results' takes payment.succeeded in batches."""
    limits: dict[str, Any] = {
        "prefetch": settings.consumer_prefetch,
        "concurrency": settings.consumer_concurrency,
        "max_attempts": settings.consumer_max_attempts,
        "topology": topology,
    }
    if queue == user_changes.queue:
        return Consumer(broker, queue, user_changes.bind(users), **limits)
    if queue == catalog_changes.queue:
        return Consumer(broker, queue, catalog_changes.bind(prices), **limits)
    if queue != payment_results.queue:
        raise ValueError(f"the order service consumes no queue {queue!r}")
    return BatchConsumer(
        broker,
        queue,
        payment_results.bind(orders),
        batch_handler=settle_payments(orders),
        batch_types=BATCHED,
        max_batch=settings.consumer_batch_size,
        linger=settings.consumer_batch_linger_seconds,
        **limits,
    )
