"""The API schemas keep money exact: strings in, strings out, floats refused."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from order_service.domain.money import MAX_AMOUNT
from order_service.domain.order import Order, OrderLine, OrderStatus
from order_service.entrypoints.http_schemas import PRICE_PATTERN, OrderCreate, OrderPublic
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


def _line(quantity: object = 1, unit_price: object = "1.00") -> str:
    item = {"sku": "A", "quantity": quantity, "unit_price": unit_price}
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


NOT_PRICES = [
    ("0", "decimal_string_format"),  # zero is not a valid price (documented decision)
    ("0.00", "decimal_string_format"),
    ("0.0000", "decimal_string_format"),
    ("1e2", "decimal_string_format"),
    ("1E2", "decimal_string_format"),
    ("1_000", "decimal_string_format"),
    ("+1", "decimal_string_format"),
    ("-1", "decimal_string_format"),
    (" 1", "decimal_string_format"),
    ("1 ", "decimal_string_format"),
    ("01", "decimal_string_format"),
    ("1.", "decimal_string_format"),
    (".5", "decimal_string_format"),
    ("1.00001", "decimal_string_format"),
    ("1000000000", "decimal_string_format"),  # the domain's MAX_AMOUNT, excluded
    ("\u0661\u0662", "decimal_string_format"),  # Arabic-Indic digits: Decimal() would read 12
    ("NaN", "decimal_string_format"),
    ("Infinity", "decimal_string_format"),
    ("", "decimal_string_format"),
    (0, "decimal_string_type"),
    (10, "decimal_string_type"),
    (10.25, "decimal_string_type"),
    (True, "decimal_string_type"),
    (None, "decimal_string_type"),
]


@pytest.mark.parametrize(("price", "error_type"), NOT_PRICES)
def test_prices_are_canonical_positive_decimal_strings(price: object, error_type: str) -> None:
    with pytest.raises(ValidationError) as info:
        OrderCreate.model_validate_json(_line(unit_price=price))
    [error] = info.value.errors()
    assert (error["loc"], error["type"]) == (("items", 0, "unit_price"), error_type)


@pytest.mark.parametrize(
    ("price", "value"),
    [
        ("0.10", Decimal("0.10")),
        ("0.0001", Decimal("0.0001")),
        ("1", Decimal(1)),
        ("10.25", Decimal("10.25")),
        ("999999999.9999", Decimal("999999999.9999")),
    ],
)
def test_canonical_prices_are_read_exactly(price: str, value: Decimal) -> None:
    [line] = OrderCreate.model_validate_json(_line(unit_price=price)).lines()
    assert line.unit_price == value and str(line.unit_price) == price


@given(st.from_regex(PRICE_PATTERN))
def test_every_string_the_documented_pattern_allows_is_accepted_and_positive(price: str) -> None:
    price = price.rstrip("\n")  # hypothesis may add the newline "$" allows; fullmatch does not
    [line] = OrderCreate.model_validate_json(_line(unit_price=price)).lines()
    assert Decimal(0) < line.unit_price < MAX_AMOUNT


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=0, max_value=10**10))
def test_the_validator_accepts_exactly_what_the_pattern_documents(value: Decimal) -> None:
    text = str(value)
    documented = re.fullmatch(PRICE_PATTERN, text) is not None
    try:
        OrderCreate.model_validate_json(_line(unit_price=text))
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == documented
    assert documented == (0 < value < MAX_AMOUNT and text == format(value, "f") and "E" not in text)


def test_openapi_documents_the_price_pattern_and_that_zero_is_refused() -> None:
    schema = OrderCreate.model_json_schema()
    price = schema["$defs"]["OrderItemCreate"]["properties"]["unit_price"]
    assert price["type"] == "string" and price["pattern"] == PRICE_PATTERN
    assert "zero is refused" in price["description"]
