"""Handler of `payment.order-events`: decode, charge/refund, map failures to consumer outcomes."""

from __future__ import annotations

from pydantic import ValidationError
from shop_common.logging import get_logger
from shop_common.messaging.events import EventEnvelope, OrderCancelled, OrderCreated
from shop_common.messaging.outcomes import DeliveryInfo, Handler, PermanentError, RetryableError

from payment_service.provider.simulated import ProviderUnavailableError
from payment_service.service_layer.payments import PaymentService

log = get_logger(__name__)


def order_events_handler(service: PaymentService) -> Handler:
    """The Consumer handler: provider outage → retry tier; bad payload/unknown type → DLQ."""

    async def handle(envelope: EventEnvelope, delivery: DeliveryInfo) -> None:
        try:
            if envelope.event_type == "order.created":
                done = await service.handle_order_created(
                    envelope, envelope.payload_as(OrderCreated)
                )
            elif envelope.event_type == "order.cancelled":
                done = await service.handle_order_cancelled(
                    envelope, envelope.payload_as(OrderCancelled)
                )
            else:
                raise PermanentError(f"unexpected event type {envelope.event_type}")
        except ValidationError as exc:
            raise PermanentError(f"invalid {envelope.event_type} payload: {exc}") from exc
        except ProviderUnavailableError as exc:
            raise RetryableError(str(exc)) from exc
        log.info(
            "order event handled",
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            attempt=delivery.attempt,
            effect=done,
        )

    return handle
