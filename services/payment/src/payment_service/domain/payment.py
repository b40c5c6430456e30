"""Payment: a charge or a refund of one order, and the rules that govern them.

- One charge per order, and at most one refund (the payments table's UNIQUE (order_id, kind)
  enforces it across instances; `ONE_PER_ORDER` names the rule).
- A charge either succeeded (it has the provider's reference) or was declined (it has the reason).
- A refund is only ever of a succeeded charge, for its full amount and currency, and happens once.
- Amounts are non-negative decimals; a currency is a three-letter code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid4

from payment_service.domain.errors import (
    AlreadyRefundedError,
    InvalidAmountError,
    NothingToRefundError,
    RefundNotAllowedError,
)


class PaymentKind(StrEnum):
    """What a payment is."""

    CHARGE = "charge"
    REFUND = "refund"


class PaymentStatus(StrEnum):
    """How the provider answered."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"


# An order has at most one payment of each kind: one charge, one refund.
ONE_PER_ORDER: frozenset[PaymentKind] = frozenset(PaymentKind)


def check_money(amount: Decimal, currency: str) -> None:
    """Raise InvalidAmountError unless amount >= 0 and currency has three characters."""
    if not amount.is_finite() or amount < 0:
        raise InvalidAmountError(f"amount {amount} is not a non-negative amount")
    if len(currency) != 3:
        raise InvalidAmountError(f"currency {currency!r} is not a three-letter code")


@dataclass(frozen=True, slots=True)
class Payment:
    """A stored (or about to be stored) charge or refund; created_at is set by the store."""

    id: UUID
    order_id: UUID
    kind: PaymentKind
    status: PaymentStatus
    amount: Decimal
    currency: str
    provider_ref: str | None
    reason: str | None
    user_id: int | None
    created_at: datetime | None = None

    @classmethod
    def charged(
        cls,
        *,
        order_id: UUID,
        user_id: int | None,
        amount: Decimal,
        currency: str,
        provider_ref: str,
        payment_id: UUID | None = None,
    ) -> Payment:
        """A charge the provider accepted."""
        check_money(amount, currency)
        return cls(
            payment_id or uuid4(),
            order_id,
            PaymentKind.CHARGE,
            PaymentStatus.SUCCEEDED,
            amount,
            currency,
            provider_ref,
            None,
            user_id,
        )

    @classmethod
    def declined(
        cls, *, order_id: UUID, user_id: int | None, amount: Decimal, currency: str, reason: str
    ) -> Payment:
        """A charge the provider refused for a business reason (no retry)."""
        check_money(amount, currency)
        return cls(
            uuid4(),
            order_id,
            PaymentKind.CHARGE,
            PaymentStatus.DECLINED,
            amount,
            currency,
            None,
            reason,
            user_id,
        )

    @property
    def refundable(self) -> bool:
        """A succeeded charge."""
        return self.kind is PaymentKind.CHARGE and self.status is PaymentStatus.SUCCEEDED

    def refund(self, *, provider_ref: str) -> Payment:
        """The refund of this charge (full amount, same owner); RefundNotAllowedError otherwise."""
        if not self.refundable:
            raise RefundNotAllowedError(f"payment {self.id} is a {self.status} {self.kind}")
        return Payment(
            uuid4(),
            self.order_id,
            PaymentKind.REFUND,
            PaymentStatus.SUCCEEDED,
            self.amount,
            self.currency,
            provider_ref,
            None,
            self.user_id,
        )


def charge_to_refund(payments: list[Payment]) -> Payment:
    """The charge a cancellation refunds, from the order's payments.

    NothingToRefundError without a succeeded charge, AlreadyRefundedError when a refund exists.
    """
    by_kind = {p.kind: p for p in payments}
    charge = by_kind.get(PaymentKind.CHARGE)
    if charge is None or not charge.refundable:
        raise NothingToRefundError("the order has no succeeded charge")
    if PaymentKind.REFUND in by_kind:
        raise AlreadyRefundedError(f"the charge {charge.id} is refunded already")
    return charge
