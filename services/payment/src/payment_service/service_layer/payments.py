"""The payment use cases: charge an order once its stock is held (stock.reserved), refund a
cancelled paid order once, read payments.

Every effect commits with its inbox claim and its outbox event (at-least-once delivery, each
effect exactly once). The provider is called outside any transaction; its idempotency key (the
order id for a charge, the charge id for a refund) makes a crash between the call and the commit
harmless: the redelivery calls again and gets the same receipt.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCancelled,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    StockReserved,
    new_event,
)

from payment_service.domain.errors import RefundNotAllowedError
from payment_service.domain.payment import Payment, charge_to_refund, check_money
from payment_service.service_layer.provider import PaymentDeclinedError, PaymentProvider
from payment_service.service_layer.unit_of_work import UnitOfWorkFactory

# The inbox consumer name: the queue the saga events arrive on.
INBOX_CONSUMER = "payment.order-events"


def _outcome(event_type: str, payload: BaseModel, cause: EventEnvelope) -> EventEnvelope:
    return new_event(
        event_type, payload, correlation_id=cause.correlation_id, causation_id=str(cause.event_id)
    )


class PaymentService:
    """Handles order events and answers reads."""

    def __init__(self, uow: UnitOfWorkFactory, provider: PaymentProvider) -> None:
        self._uow = uow
        self._provider = provider

    async def handle_stock_reserved(self, envelope: EventEnvelope, event: StockReserved) -> bool:
        """Charge the order whose stock is held, once; False when it was charged (or declined)
        already.

        A decline is recorded and published as payment.failed; ProviderUnavailableError
        propagates (the consumer retries it); InvalidAmountError before any provider call.
        """
        uow = self._uow()
        if await uow.payments.charged(event.order_id):
            return False
        check_money(event.total, event.currency)
        payment: Payment
        result: BaseModel
        try:
            receipt = await self._provider.charge(
                idempotency_key=event.order_id, amount=event.total, currency=event.currency
            )
        except PaymentDeclinedError as exc:
            payment = Payment.declined(
                order_id=event.order_id,
                user_id=event.user_id,
                amount=event.total,
                currency=event.currency,
                reason=exc.reason,
            )
            result, event_type = (
                PaymentFailed(order_id=event.order_id, reason=exc.reason or "declined"),
                "payment.failed",
            )
        else:
            payment = Payment.charged(
                order_id=event.order_id,
                user_id=event.user_id,
                amount=event.total,
                currency=event.currency,
                provider_ref=receipt.provider_ref,
            )
            result, event_type = (
                PaymentSucceeded(
                    payment_id=payment.id,
                    order_id=event.order_id,
                    amount=event.total,
                    currency=event.currency,
                ),
                "payment.succeeded",
            )
        return await uow.payments.record_once(
            payment,
            cause_id=envelope.event_id,
            consumer=INBOX_CONSUMER,
            event=_outcome(event_type, result, envelope),
        )

    async def handle_order_cancelled(self, envelope: EventEnvelope, event: OrderCancelled) -> bool:
        """Refund a succeeded charge once; False when there is none, or it is refunded already."""
        if not event.refund_required:
            return False
        uow = self._uow()
        try:
            charge = charge_to_refund(await uow.payments.for_order(event.order_id))
        except RefundNotAllowedError:
            return False
        receipt = await self._provider.refund(
            idempotency_key=charge.id,
            provider_ref=charge.provider_ref or "",
            amount=charge.amount,
            currency=charge.currency,
        )
        refund = charge.refund(provider_ref=receipt.provider_ref)
        async with uow:
            if not await uow.claim(envelope.event_id, INBOX_CONSUMER):
                return False
            if not await uow.payments.add(refund):  # a refund by another event of the order
                await uow.commit()  # the claim stands: this event has been handled
                return False
            refunded = PaymentRefunded(
                payment_id=refund.id,
                order_id=event.order_id,
                amount=refund.amount,
                currency=refund.currency,
            )
            await uow.emit(
                _outcome("payment.refunded", refunded, envelope), aggregate_id=str(event.order_id)
            )
            await uow.commit()
        return True

    async def get(self, payment_id: UUID) -> Payment | None:
        """One payment by id."""
        return await self._uow().payments.get(payment_id)

    async def for_order(self, order_id: UUID) -> list[Payment]:
        """The charge and refund of one order, oldest first."""
        return await self._uow().payments.for_order(order_id)
