"""The API schemas: a line is a sku and a quantity (the shop prices it), money goes out as
strings, and nothing is coerced."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from order_service.domain.order import Order, OrderLine, OrderStatus, WantedLine
from order_service.entrypoints.http_schemas import SKU_PATTERN, OrderCreate, OrderPublic
from pydantic import ValidationError


def test_a_line_is_a_sku_and_a_quantity() -> None:
    body = OrderCreate.model_validate_json('{"items": [{"sku": "BOOK-001", "quantity": 3}]}')
    assert body.wanted() == [WantedLine("BOOK-001", 3)]
    assert body.currency is None  # the shop's currency


@pytest.mark.parametrize(
    "raw",
    [
        '{"items": [], "currency": "EUR"}',
        '{"items": [{"sku": "BOOK-001", "quantity": 0}], "currency": "EUR"}',
        '{"items": [{"sku": "BOOK-001", "quantity": 1}], "currency": "eur"}',
        '{"items": [{"sku": "BOOK-001", "quantity": 1}], "currency": "EUR", "total": "0"}',
        '{"items": [{"sku": "book-001", "quantity": 1}]}',
        '{"items": [{"sku": "..", "quantity": 1}]}',
        '{"items": [{"sku": "AB", "quantity": 1}]}',
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


def _line(quantity: object = 1, **extra: object) -> str:
    item = {"sku": "BOOK-001", "quantity": quantity, **extra}
    return json.dumps({"items": [item], "currency": "EUR"})


@pytest.mark.parametrize(
    ("quantity", "error_type"),
    [
        (True, "int_type"),
        ("2", "int_type"),
        (2.0, "int_type"),
        (2.5, "int_type"),
        (None, "int_type"),
    ],
)
def test_quantity_is_a_json_integer_never_coerced(quantity: object, error_type: str) -> None:
    with pytest.raises(ValidationError) as info:
        OrderCreate.model_validate_json(_line(quantity=quantity))
    [error] = info.value.errors()
    assert (error["loc"], error["type"]) == (("items", 0, "quantity"), error_type)


@pytest.mark.parametrize("price", ["41.99", "0.01", "0", 10.25, 10, True, None, ""])
def test_a_client_sent_price_is_refused_whatever_its_shape(price: object) -> None:
    with pytest.raises(ValidationError) as info:
        OrderCreate.model_validate_json(_line(unit_price=price))
    [error] = info.value.errors()
    assert (error["loc"], error["type"]) == (("items", 0, "unit_price"), "extra_forbidden")


@given(st.from_regex(SKU_PATTERN, fullmatch=True).filter(lambda s: 3 <= len(s) <= 32))
def test_every_sku_the_catalog_could_hold_is_accepted(sku: str) -> None:
    body = OrderCreate.model_validate_json(json.dumps({"items": [{"sku": sku, "quantity": 1}]}))
    assert body.wanted()[0].sku == sku


def test_openapi_documents_no_price_on_a_new_line() -> None:
    schema = OrderCreate.model_json_schema()
    item = schema["$defs"]["OrderItemCreate"]
    assert set(item["properties"]) == {"sku", "quantity"}
    assert item["additionalProperties"] is False
    assert re.fullmatch(item["properties"]["sku"]["pattern"], "BOOK-001")
