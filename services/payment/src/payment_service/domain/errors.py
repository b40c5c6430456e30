"""Domain errors: what the payment rules refuse (all subclasses of PaymentRuleError)."""

from __future__ import annotations


class PaymentRuleError(Exception):
    """A payment rule refused the operation."""


class InvalidAmountError(PaymentRuleError):
    """The amount is negative or the currency is not a three-letter code."""


class RefundNotAllowedError(PaymentRuleError):
    """Only a succeeded charge can be refunded."""


class NothingToRefundError(RefundNotAllowedError):
    """The order has no succeeded charge (none at all, or a declined one)."""


class AlreadyRefundedError(RefundNotAllowedError):
    """The order's charge has been refunded already: one refund per order."""
