"""The Order aggregate and its state machine.

`TRANSITIONS` is the whole state machine (the one table); `SOURCES_OF` (the states each target
may be reached from) is derived from it, and the SQL guards of the one-statement fast paths
(adapters/orders.py) are derived from `SOURCES_OF`, so the machine is written down once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from uuid import UUID

from order_service.domain.money import MoneyError, check_amount, check_currency


class OrderStatus(enum.StrEnum):
    """States of an order."""

    PENDING = "PENDING"
    PAID = "PAID"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CANCELLED = "CANCELLED"
    CANCELLED_REFUND_PENDING = "CANCELLED_REFUND_PENDING"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"  # the shop could not hold its stock (out of stock, or held too long)


# The whole state machine: anything not listed here is an illegal transition (409 at the edge).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.PAID, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED, OrderStatus.REJECTED}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.CANCELLED_REFUND_PENDING}),
    OrderStatus.CANCELLED_REFUND_PENDING: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.PAYMENT_FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}

# The states each target may be reached from: the inverse of TRANSITIONS, never written by hand.
SOURCES_OF: MappingProxyType[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        target: frozenset(source for source, targets in TRANSITIONS.items() if target in targets)
        for target in OrderStatus
    }
)

# A charge reported for an order in one of these states must be given back: the order stopped
# waiting for its payment (timed out, cancelled, or its stock released, while PENDING) before
# the charge landed.
NO_LONGER_CHARGEABLE = frozenset(
    {OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED, OrderStatus.REJECTED}
)

# Routing key of the event each arrival state emits (DESIGN.md's order.* keys).
EVENT_OF_STATUS: dict[OrderStatus, str] = {
    OrderStatus.PAID: "order.paid",
    OrderStatus.PAYMENT_FAILED: "order.payment_failed",
    OrderStatus.CANCELLED: "order.cancelled",
    OrderStatus.CANCELLED_REFUND_PENDING: "order.cancelled",
    OrderStatus.REFUNDED: "order.refunded",
    OrderStatus.REJECTED: "order.rejected",
}

# Where the saga ends, named as shop_saga_outcomes_total{outcome} counts it: the final state's
# name lowercased (PAID is where the payment saga ends; a cancel then starts a refund). An order
# the saga timeout fails ends PAYMENT_FAILED too, but is counted apart, as SAGA_EXPIRED.
SAGA_OUTCOME_OF: MappingProxyType[OrderStatus, str] = MappingProxyType(
    {
        OrderStatus.PAID: "paid",
        OrderStatus.PAYMENT_FAILED: "payment_failed",
        OrderStatus.CANCELLED: "cancelled",
        OrderStatus.REFUNDED: "refunded",
        OrderStatus.REJECTED: "rejected",
    }
)
SAGA_EXPIRED = "expired"
SAGA_OUTCOMES = (*SAGA_OUTCOME_OF.values(), SAGA_EXPIRED)


class IllegalTransitionError(Exception):
    """A transition the state machine does not allow."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"cannot move an order from {current} to {target}")
        self.current = current
        self.target = target


class ConcurrentUpdateError(Exception):
    """The order changed between read and write (its optimistic version moved on)."""


class InvalidOrderError(ValueError):
    """Order input that breaks a domain rule (empty, bad quantity, bad money)."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line: SKU, quantity and exact unit price."""

    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def subtotal(self) -> Decimal:
        """Quantity times unit price, exact."""
        return self.unit_price * self.quantity


MAX_LINES = 100


@dataclass(frozen=True, slots=True)
class WantedLine:
    """One line as the client asks for it: a sku and a quantity (the shop prices it)."""

    sku: str
    quantity: int


def priced_lines(wanted: list[WantedLine], prices: dict[str, Decimal]) -> list[OrderLine]:
    """The order lines at the shop's prices (every sku must be in `prices`)."""
    return [OrderLine(w.sku, w.quantity, prices[w.sku]) for w in wanted]


def order_total(lines: list[OrderLine], currency: str) -> Decimal:
    """Validate the lines and return the server-side total in the currency's minor unit."""
    if not lines:
        raise InvalidOrderError("an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise InvalidOrderError(f"an order has at most {MAX_LINES} lines")
    try:
        check_currency(currency)
        for line in lines:
            if line.quantity <= 0:
                raise InvalidOrderError(f"quantity of {line.sku} must be greater than 0")
            check_amount(line.unit_price, currency)
            if line.unit_price == 0:  # the catalog never prices at 0 (check_price)
                raise InvalidOrderError(f"unit price of {line.sku} must be greater than 0")
        return check_amount(sum((line.subtotal for line in lines), Decimal(0)), currency)
    except MoneyError as exc:
        raise InvalidOrderError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the domain sees it (immutable; transitions return a new one)."""

    id: UUID
    user_id: int
    lines: tuple[OrderLine, ...]
    currency: str
    total: Decimal
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    failure_reason: str | None = None
    version: int = 1

    @classmethod
    def place(
        cls, order_id: UUID, user_id: int, lines: list[OrderLine], currency: str, *, at: datetime
    ) -> Order:
        """A new PENDING order; its total is computed here (InvalidOrderError for bad input)."""
        total = order_total(lines, currency)
        return cls(order_id, user_id, tuple(lines), currency, total, OrderStatus.PENDING, at, at)

    def can_move_to(self, target: OrderStatus) -> bool:
        """Whether the state machine allows `target` from the current status."""
        return target in TRANSITIONS[self.status]

    def transition(self, target: OrderStatus, *, at: datetime, reason: str | None = None) -> Order:
        """Return the order in `target`, or raise IllegalTransitionError."""
        if not self.can_move_to(target):
            raise IllegalTransitionError(self.status, target)
        return replace(
            self,
            status=target,
            updated_at=at,
            failure_reason=reason if reason is not None else self.failure_reason,
            version=self.version + 1,
        )

    def cancel(self, *, at: datetime) -> Order:
        """Cancel: PENDING → CANCELLED, PAID → CANCELLED_REFUND_PENDING (refund requested)."""
        if self.status is OrderStatus.PAID:
            return self.transition(OrderStatus.CANCELLED_REFUND_PENDING, at=at)
        return self.transition(OrderStatus.CANCELLED, at=at)

    @property
    def owes_late_charge_refund(self) -> bool:
        """True when a charge reported now must be refunded (see NO_LONGER_CHARGEABLE)."""
        return self.status in NO_LONGER_CHARGEABLE

    @property
    def refund_required(self) -> bool:
        """True when the cancellation needs the payment service to refund."""
        return self.status is OrderStatus.CANCELLED_REFUND_PENDING
