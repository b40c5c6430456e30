"""Handlers of the order service's queues.

`order.payment-results`: payment.* events move the order (once, via the inbox).
`order.user-changes`: user.updated/deleted evict the cached user (idempotent, so no inbox).
"""

from __future__ import annotations

from pydantic import ValidationError
from shop_common.logging import get_logger
from shop_common.messaging.events import (
    EventEnvelope,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    UserChanged,
    UserDeleted,
)
from shop_common.messaging.outcomes import DeliveryInfo, Handler, PermanentError

from order_service.domain.order import OrderStatus
from order_service.service_layer.orders import OrderService
from order_service.user_lookup import UserLookup

log = get_logger(__name__)


def payment_results_handler(service: OrderService) -> Handler:
    """The Consumer handler; database errors propagate and the consumer retries them."""

    async def handle(envelope: EventEnvelope, delivery: DeliveryInfo) -> None:
        try:
            if envelope.event_type == "payment.succeeded":
                ok = envelope.payload_as(PaymentSucceeded)
                done = await service.apply_payment_result(envelope, ok.order_id, OrderStatus.PAID)
            elif envelope.event_type == "payment.failed":
                failed = envelope.payload_as(PaymentFailed)
                done = await service.apply_payment_result(
                    envelope, failed.order_id, OrderStatus.PAYMENT_FAILED, failed.reason
                )
            elif envelope.event_type == "payment.refunded":
                refunded = envelope.payload_as(PaymentRefunded)
                done = await service.apply_payment_result(
                    envelope, refunded.order_id, OrderStatus.REFUNDED
                )
            else:
                raise PermanentError(f"unexpected event type {envelope.event_type}")
        except ValidationError as exc:
            raise PermanentError(f"invalid {envelope.event_type} payload: {exc}") from exc
        log.info(
            "payment result handled",
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            attempt=delivery.attempt,
            effect=done,
        )

    return handle


def user_changes_handler(lookup: UserLookup) -> Handler:
    """Evict the user named by user.updated/user.deleted; user.created has nothing cached.

    (A new user's id was never handed out before, so no "not found" can be cached for it.)
    """

    async def handle(envelope: EventEnvelope, delivery: DeliveryInfo) -> None:
        try:
            if envelope.event_type == "user.created":
                envelope.payload_as(UserChanged)
                return
            if envelope.event_type == "user.updated":
                user_id = envelope.payload_as(UserChanged).user_id
            elif envelope.event_type == "user.deleted":
                user_id = envelope.payload_as(UserDeleted).user_id
            else:
                raise PermanentError(f"unexpected event type {envelope.event_type}")
        except ValidationError as exc:
            raise PermanentError(f"invalid {envelope.event_type} payload: {exc}") from exc
        await lookup.evict(user_id)
        log.info(
            "cached user evicted",
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            user_id=user_id,
        )

    return handle
