"""The API schemas keep money exact: strings in, strings out, floats refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from order_service.api.schemas import OrderCreate, OrderPublic
from order_service.domain.order import Order, OrderLine, OrderStatus
from pydantic import ValidationError


def test_decimal_string_is_exact() -> None:
    body = OrderCreate.model_validate_json(
        '{"items": [{"sku": "A", "quantity": 3, "unit_price": "0.10"}], "currency": "EUR"}'
    )
    assert body.lines() == [OrderLine("A", 3, Decimal("0.10"))]


@pytest.mark.parametrize(
    "raw",
    [
        '{"items": [], "currency": "EUR"}',
        '{"items": [{"sku": "A", "quantity": 1, "unit_price": 10.25}], "currency": "EUR"}',
        '{"items": [{"sku": "A", "quantity": 0, "unit_price": "1"}], "currency": "EUR"}',
        '{"items": [{"sku": "A", "quantity": 1, "unit_price": "1"}], "currency": "eur"}',
        '{"items": [{"sku": "A", "quantity": 1, "unit_price": "1"}], "currency": "EUR", "total": "0"}',
    ],
)
def test_bad_bodies_are_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate_json(raw)


def test_public_total_is_a_string() -> None:
    now = datetime.now(UTC)
    order = Order(
        uuid4(),
        1,
        (OrderLine("A", 2, Decimal("1.05")),),
        "EUR",
        Decimal("2.10"),
        OrderStatus.PENDING,
        now,
        now,
    )
    dumped = OrderPublic.of(order).model_dump(mode="json")
    assert dumped["total"] == "2.10"
    assert dumped["items"][0]["unit_price"] == "1.05"
