"""The payment rules: amounts and currency, refunds only of a succeeded charge, one refund per order."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from payment_service.domain.errors import (
    AlreadyRefundedError,
    InvalidAmountError,
    NothingToRefundError,
    RefundNotAllowedError,
)
from payment_service.domain.payment import (
    Payment,
    PaymentKind,
    PaymentStatus,
    charge_to_refund,
    check_money,
)

ORDER = uuid4()


def succeeded(amount: str = "10.00") -> Payment:
    return Payment.charged(
        order_id=ORDER, user_id=3, amount=Decimal(amount), currency="EUR", provider_ref="ch_1"
    )


def declined() -> Payment:
    return Payment.declined(
        order_id=ORDER, user_id=3, amount=Decimal("10.00"), currency="EUR", reason="limit"
    )


@pytest.mark.parametrize(
    ("amount", "currency"), [("-0.01", "EUR"), ("NaN", "EUR"), ("1", "EU"), ("1", "EURO")]
)
def test_invalid_money_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(InvalidAmountError):
        check_money(Decimal(amount), currency)
    with pytest.raises(InvalidAmountError):
        Payment.charged(
            order_id=ORDER, user_id=1, amount=Decimal(amount), currency=currency, provider_ref="x"
        )


def test_zero_is_a_valid_amount() -> None:
    check_money(Decimal("0"), "EUR")


def test_a_succeeded_charge_refunds_in_full_to_the_same_owner() -> None:
    charge = succeeded("12.34")
    refund = charge.refund(provider_ref="re_1")
    assert (refund.kind, refund.status) == (PaymentKind.REFUND, PaymentStatus.SUCCEEDED)
    assert (refund.order_id, refund.amount, refund.currency, refund.user_id) == (
        ORDER,
        Decimal("12.34"),
        "EUR",
        3,
    )
    assert refund.id != charge.id


def test_a_declined_charge_or_a_refund_cannot_be_refunded() -> None:
    with pytest.raises(RefundNotAllowedError):
        declined().refund(provider_ref="re_1")
    with pytest.raises(RefundNotAllowedError):
        succeeded().refund(provider_ref="re_1").refund(provider_ref="re_2")


def test_the_charge_to_refund_of_an_order() -> None:
    charge = succeeded()
    assert charge_to_refund([charge]) is charge
    with pytest.raises(NothingToRefundError):
        charge_to_refund([])
    with pytest.raises(NothingToRefundError):
        charge_to_refund([declined()])
    with pytest.raises(AlreadyRefundedError):
        charge_to_refund([charge, charge.refund(provider_ref="re_1")])
