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
"""

from __future__ import annotations

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

from order_service.domain.order import OrderStatus
from order_service.service_layer.orders import OrderService
from order_service.service_layer.prices import PriceBook
from order_service.service_layer.users import UserDirectory

payment_results = Handlers[OrderService]("order.payment-results")
user_changes = Handlers[UserDirectory]("order.user-changes")
user_changes.ignores("user.created")
catalog_changes = Handlers[PriceBook]("order.catalog-changes")


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
