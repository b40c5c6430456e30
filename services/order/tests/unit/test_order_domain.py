"""Unit tests of the order aggregate: money rules, server-side total, the state machine."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from order_service.domain.order import (
    TRANSITIONS,
    IllegalTransitionError,
    InvalidOrderError,
    Order,
    OrderLine,
    OrderStatus,
    order_total,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_order(status: OrderStatus) -> Order:
    lines = (OrderLine("SKU-1", 2, Decimal("10.25")),)
    return Order(uuid4(), 7, lines, "EUR", Decimal("20.50"), status, NOW, NOW)


def test_total_is_exact_decimal() -> None:
    lines = [OrderLine("A", 3, Decimal("0.10")), OrderLine("B", 1, Decimal("0.20"))]
    assert order_total(lines, "EUR") == Decimal("0.50")


def test_total_in_zero_decimal_currency() -> None:
    assert order_total([OrderLine("A", 2, Decimal("150"))], "JPY") == Decimal("300")


@pytest.mark.parametrize(
    ("lines", "currency", "message"),
    [
        ([], "EUR", "at least one line"),
        ([OrderLine("A", 0, Decimal("1.00"))], "EUR", "greater than 0"),
        ([OrderLine("A", 1, Decimal("1.001"))], "EUR", "decimal places"),
        ([OrderLine("A", 1, Decimal("1.5"))], "JPY", "decimal places"),
        ([OrderLine("A", 1, Decimal("-1.00"))], "EUR", "out of range"),
        ([OrderLine("A", 1, Decimal("0.00"))], "EUR", "unit price of A must be greater than 0"),
        ([OrderLine("A", 1, Decimal("0"))], "JPY", "unit price of A must be greater than 0"),
        ([OrderLine("A", 1, Decimal("NaN"))], "EUR", "out of range"),
        ([OrderLine("A", 1, Decimal("1.00"))], "XXX", "unsupported currency"),
    ],
)
def test_bad_lines_are_rejected(lines: list[OrderLine], currency: str, message: str) -> None:
    with pytest.raises(InvalidOrderError, match=message):
        order_total(lines, currency)


@given(
    st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 10_000_00)), min_size=1, max_size=20)
)
def test_total_equals_sum_of_cents(raw: list[tuple[int, int]]) -> None:
    lines = [OrderLine(f"S{i}", q, Decimal(c).scaleb(-2)) for i, (q, c) in enumerate(raw)]
    assert order_total(lines, "EUR") == Decimal(sum(q * c for q, c in raw)).scaleb(-2)


@pytest.mark.parametrize("current", list(OrderStatus))
@pytest.mark.parametrize("target", list(OrderStatus))
def test_state_machine_allows_exactly_the_table(current: OrderStatus, target: OrderStatus) -> None:
    order = make_order(current)
    if target in TRANSITIONS[current]:
        moved = order.transition(target, at=NOW)
        assert moved.status is target
        assert moved.version == order.version + 1
    else:
        with pytest.raises(IllegalTransitionError):
            order.transition(target, at=NOW)


def test_cancel_pending_needs_no_refund() -> None:
    cancelled = make_order(OrderStatus.PENDING).cancel(at=NOW)
    assert cancelled.status is OrderStatus.CANCELLED
    assert not cancelled.refund_required


def test_cancel_paid_requests_refund_then_refunded() -> None:
    cancelled = make_order(OrderStatus.PAID).cancel(at=NOW)
    assert cancelled.status is OrderStatus.CANCELLED_REFUND_PENDING
    assert cancelled.refund_required
    assert cancelled.transition(OrderStatus.REFUNDED, at=NOW).status is OrderStatus.REFUNDED


@pytest.mark.parametrize(
    "status",
    [OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED, OrderStatus.REFUNDED],
)
def test_cancel_of_terminal_order_is_illegal(status: OrderStatus) -> None:
    with pytest.raises(IllegalTransitionError):
        make_order(status).cancel(at=NOW)


def test_failure_reason_is_kept() -> None:
    failed = make_order(OrderStatus.PENDING).transition(
        OrderStatus.PAYMENT_FAILED, at=NOW, reason="declined"
    )
    assert failed.failure_reason == "declined"
