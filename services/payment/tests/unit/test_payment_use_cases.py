"""The payment use cases over in-memory fakes: charge once, declines, outages, refund rules, reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from payment_service.domain.errors import InvalidAmountError
from payment_service.domain.payment import PaymentKind, PaymentStatus
from payment_service.service_layer.payments import INBOX_CONSUMER
from payment_service.service_layer.provider import ProviderUnavailableError
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCancelled,
    StockLine,
    StockReserved,
    new_event,
)


def stock_reserved(
    total: str = "20.50", currency: str = "EUR"
) -> tuple[EventEnvelope, StockReserved]:
    event = StockReserved(
        order_id=uuid4(),
        user_id=7,
        items=[StockLine(sku="A", quantity=1)],
        total=Decimal(total),
        currency=currency,
    )
    return new_event("stock.reserved", event, correlation_id=str(event.order_id)), event


def cancelled(event: StockReserved, refund_required: bool = True) -> tuple[EventEnvelope, Any]:
    payload = OrderCancelled(
        order_id=event.order_id, user_id=event.user_id, refund_required=refund_required
    )
    return new_event("order.cancelled", payload, correlation_id=str(event.order_id)), payload


async def charge(world: Any, total: str = "20.50") -> StockReserved:
    envelope, event = stock_reserved(total)
    assert await world.service.handle_stock_reserved(envelope, event)
    return event


# --- charge -------------------------------------------------------------------------------------


async def test_an_order_is_charged_once_and_payment_succeeded_is_emitted(world: Any) -> None:
    envelope, event = stock_reserved("20.50")

    assert await world.service.handle_stock_reserved(envelope, event)

    [payment] = world.store.payments
    assert (payment.kind, payment.status) == (PaymentKind.CHARGE, PaymentStatus.SUCCEEDED)
    assert (payment.amount, payment.currency, payment.user_id) == (Decimal("20.50"), "EUR", 7)
    assert payment.provider_ref == world.provider.charges[event.order_id].provider_ref
    [outcome] = world.store.outbox
    assert outcome.event_type == "payment.succeeded"
    assert outcome.payload["payment_id"] == str(payment.id)
    assert outcome.correlation_id == str(event.order_id)
    assert outcome.causation_id == str(envelope.event_id)
    assert world.store.inbox == {(envelope.event_id, INBOX_CONSUMER)}


async def test_a_duplicate_delivery_is_a_no_op_without_a_provider_call(world: Any) -> None:
    envelope, event = stock_reserved()
    assert await world.service.handle_stock_reserved(envelope, event)
    calls = world.provider.calls

    assert not await world.service.handle_stock_reserved(envelope, event)

    assert world.provider.calls == calls
    assert len(world.store.payments) == len(world.store.outbox) == 1


async def test_another_event_for_a_charged_order_charges_nothing(world: Any) -> None:
    envelope, event = stock_reserved()
    assert await world.service.handle_stock_reserved(envelope, event)

    replay = new_event("stock.reserved", event)  # a new event id for the same order
    assert not await world.service.handle_stock_reserved(replay, event)

    assert len(world.store.payments) == 1
    assert [e.event_type for e in world.store.outbox] == ["payment.succeeded"]


async def test_a_race_lost_after_the_provider_call_writes_nothing(world: Any) -> None:
    """Two deliveries pass the pre-check at once: the store keeps the first, the second is False."""
    envelope, event = stock_reserved()
    first = world.uow()
    assert not await first.payments.charged(event.order_id)
    assert await world.service.handle_stock_reserved(envelope, event)

    assert not await world.service.handle_stock_reserved(new_event("stock.reserved", event), event)
    assert len(world.store.payments) == 1
    assert len(world.provider.charges) == 1  # the provider's key is the order id


async def test_a_decline_is_recorded_and_published_as_payment_failed(world: Any) -> None:
    world.provider.decline_reason = "amount 900.00 EUR above the card limit"
    envelope, event = stock_reserved("900.00")

    assert await world.service.handle_stock_reserved(envelope, event)

    [payment] = world.store.payments
    assert (payment.status, payment.provider_ref) == (PaymentStatus.DECLINED, None)
    assert payment.reason == "amount 900.00 EUR above the card limit"
    [outcome] = world.store.outbox
    assert outcome.event_type == "payment.failed"
    assert outcome.payload["reason"] == payment.reason
    # A declined order is charged: a redelivery does not ask the provider again.
    assert not await world.service.handle_stock_reserved(envelope, event)
    assert world.provider.calls == 1


async def test_a_provider_outage_propagates_and_leaves_no_trace(world: Any) -> None:
    world.provider.down = True
    envelope, event = stock_reserved()

    with pytest.raises(ProviderUnavailableError):
        await world.service.handle_stock_reserved(envelope, event)

    assert (world.store.payments, world.store.outbox, world.store.inbox) == ([], [], set())
    world.provider.down = False
    assert await world.service.handle_stock_reserved(envelope, event)  # the retry charges
    assert len(world.store.payments) == 1


@pytest.mark.parametrize(("total", "currency"), [("-1.00", "EUR"), ("1.00", "EURO")])
async def test_an_invalid_amount_is_refused_before_the_provider(
    world: Any, total: str, currency: str
) -> None:
    envelope, event = stock_reserved(total)
    event = event.model_copy(update={"currency": currency})

    with pytest.raises(InvalidAmountError):
        await world.service.handle_stock_reserved(envelope, event)

    assert world.provider.calls == 0
    assert world.store.payments == []


# --- refund -------------------------------------------------------------------------------------


async def test_cancelling_a_paid_order_refunds_the_charge_once(world: Any) -> None:
    event = await charge(world, "44.00")
    [charged] = world.store.payments
    envelope, cancel = cancelled(event)

    assert await world.service.handle_order_cancelled(envelope, cancel)

    refund = world.store.payments[1]
    assert (refund.kind, refund.status) == (PaymentKind.REFUND, PaymentStatus.SUCCEEDED)
    assert (refund.amount, refund.currency, refund.user_id) == (Decimal("44.00"), "EUR", 7)
    assert refund.provider_ref == world.provider.refunds[charged.id].provider_ref
    outcome = world.store.outbox[-1]
    assert outcome.event_type == "payment.refunded"
    assert outcome.payload["payment_id"] == str(refund.id)
    assert outcome.causation_id == str(envelope.event_id)
    assert world.units[-1].committed


async def test_a_second_cancellation_refunds_nothing(world: Any) -> None:
    event = await charge(world)
    envelope, cancel = cancelled(event)
    assert await world.service.handle_order_cancelled(envelope, cancel)
    calls = world.provider.calls

    assert not await world.service.handle_order_cancelled(envelope, cancel)  # redelivery
    again, cancel_again = cancelled(event)  # another cancellation event
    assert not await world.service.handle_order_cancelled(again, cancel_again)

    assert world.provider.calls == calls
    assert [p.kind for p in world.store.payments] == [PaymentKind.CHARGE, PaymentKind.REFUND]


async def test_a_refund_lost_to_another_event_commits_only_the_claim(world: Any) -> None:
    """Two cancellations both read 'no refund yet'; the loser's insert conflicts: False, and its
    inbox claim commits (the event has been handled), no event is emitted."""
    event = await charge(world)
    envelope, cancel = cancelled(event)
    [charged] = world.store.payments

    # Another cancellation's refund lands between this one's read and its transaction.
    original_refund = world.provider.refund

    async def refund_and_race(**kwargs: Any) -> Any:
        receipt = await original_refund(**kwargs)
        world.store.payments.append(charged.refund(provider_ref="re_racer"))
        return receipt

    world.provider.refund = refund_and_race
    assert not await world.service.handle_order_cancelled(envelope, cancel)

    assert [p.provider_ref for p in world.store.payments if p.kind == "refund"] == ["re_racer"]
    assert (envelope.event_id, INBOX_CONSUMER) in world.store.inbox
    assert [e.event_type for e in world.store.outbox] == ["payment.succeeded"]
    assert world.units[-1].committed


async def test_a_cancellation_without_refund_required_does_nothing(world: Any) -> None:
    event = await charge(world)
    envelope, cancel = cancelled(event, refund_required=False)

    assert not await world.service.handle_order_cancelled(envelope, cancel)
    assert len(world.store.payments) == 1


async def test_an_unpaid_order_is_not_refunded(world: Any) -> None:
    _, never_charged = stock_reserved()
    envelope, cancel = cancelled(never_charged)

    assert not await world.service.handle_order_cancelled(envelope, cancel)
    assert world.provider.calls == 0


async def test_a_declined_charge_is_not_refunded(world: Any) -> None:
    world.provider.decline_reason = "no"
    event = await charge(world)
    envelope, cancel = cancelled(event)

    assert not await world.service.handle_order_cancelled(envelope, cancel)
    assert [p.kind for p in world.store.payments] == [PaymentKind.CHARGE]
    assert world.provider.refunds == {}


async def test_a_provider_outage_during_a_refund_propagates_and_writes_nothing(
    world: Any,
) -> None:
    event = await charge(world)
    envelope, cancel = cancelled(event)
    world.provider.down = True

    with pytest.raises(ProviderUnavailableError):
        await world.service.handle_order_cancelled(envelope, cancel)

    assert len(world.store.payments) == 1
    assert (envelope.event_id, INBOX_CONSUMER) not in world.store.inbox
    world.provider.down = False
    assert await world.service.handle_order_cancelled(envelope, cancel)


# --- reads --------------------------------------------------------------------------------------


async def test_reads_by_id_and_by_order(world: Any) -> None:
    event = await charge(world)
    envelope, cancel = cancelled(event)
    await world.service.handle_order_cancelled(envelope, cancel)
    charged, refunded = world.store.payments

    assert await world.service.get(charged.id) == charged
    assert await world.service.get(uuid4()) is None
    assert await world.service.for_order(event.order_id) == [charged, refunded]
    assert await world.service.for_order(uuid4()) == []
