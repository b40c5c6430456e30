"""Request/response models of the order API: exact decimals as strings, ISO 4217 currency."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from order_service.domain.money import CURRENCY_EXPONENTS
from order_service.domain.order import MAX_LINES, Order, OrderLine, OrderStatus

# A unit price is a canonical decimal string greater than zero: 1 to 9 integer digits without a
# leading zero (the domain refuses amounts >= 1,000,000,000), or "0." and a non-zero fraction;
# at most 4 decimals (the database keeps 4; the currency's minor unit narrows it further, e.g.
# none for JPY, which the domain answers as 422 invalid-order). No sign, exponent, underscore,
# whitespace or non-ASCII digit; never a JSON number.
#
# Zero is NOT a valid price (decision of issue 11): every order goes through the payment saga,
# and a line priced 0 would send the provider a charge for nothing, or hide a client bug, while
# prices still come from the client. A free item is a promotion: when the catalog service owns
# prices it will be a discount there, not a price of 0 sent by the client.
PRICE_PATTERN = (
    r"^(?:[1-9][0-9]{0,8}(?:\.[0-9]{1,4})?"
    r"|0\.(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$"
)
_PRICE = re.compile(PRICE_PATTERN)
PRICE_DESCRIPTION = (
    "Exact unit price as a decimal string, greater than 0 (a price of zero is refused): "
    "1 to 9 integer digits without leading zeros, up to 4 decimals and no more than the "
    "currency's minor unit allows; never a JSON number, no exponent, sign or underscore."
)


def _price_text(value: object) -> Decimal:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "decimal_string_type", 'give amounts as decimal strings like "10.25", not JSON numbers'
        )
    if not _PRICE.fullmatch(value):
        raise PydanticCustomError(
            "decimal_string_format",
            'a price is a decimal string greater than 0 like "10.25": no leading zeros, '
            "exponent, sign or underscore, at most 9 integer digits and 4 decimals",
        )
    return Decimal(value)


# Request side: only a string matching PRICE_PATTERN is accepted, then read as an exact Decimal.
PriceString = Annotated[
    Decimal,
    BeforeValidator(_price_text),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PRICE_PATTERN,
            "description": PRICE_DESCRIPTION,
            "examples": ["10.25"],
        }
    ),
]
# Response side: a stored Decimal written back as a string (stored rows are never re-judged).
DecimalString = Annotated[
    Decimal,
    Field(json_schema_extra={"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}),
    PlainSerializer(str, return_type=str),
]
CurrencyCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        examples=["EUR"],
        description="ISO 4217 code of an accepted currency",
        # Documented as an enum; any other code gets the domain's 422 naming the accepted ones.
        json_schema_extra={"enum": sorted(CURRENCY_EXPONENTS)},
    ),
]


class OrderItemCreate(BaseModel):
    """One line of a new order.

    Strict: `quantity` is a JSON integer (not `true`, `"2"` or `2.0`); `unit_price` is a
    decimal string greater than zero (a zero price is not valid; see PRICE_PATTERN).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", examples=["SKU-1"])
    quantity: int = Field(
        gt=0, le=10_000, strict=True, examples=[2], description="A JSON integer, 1 to 10000."
    )
    unit_price: PriceString


class OrderCreate(BaseModel):
    """Body of POST /orders; the total is computed by the server. Strictly typed: nothing is
    coerced (a bool is not a number, a numeric string not a number, a float not an integer)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.25"}],
                    "currency": "EUR",
                }
            ]
        },
    )

    items: list[OrderItemCreate] = Field(min_length=1, max_length=MAX_LINES)
    currency: CurrencyCode

    def lines(self) -> list[OrderLine]:
        """The domain lines."""
        return [OrderLine(i.sku, i.quantity, i.unit_price) for i in self.items]


ORDER_EXAMPLE: dict[str, JsonValue] = {
    "id": "0b7e3f5c-6a0e-4a59-9a53-2f8f3b1a7c11",
    "user_id": 42,
    "status": "PENDING",
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.25"}],
    "currency": "EUR",
    "total": "20.50",
    "failure_reason": None,
    "created_at": "2026-11-25T16:00:00Z",
    "updated_at": "2026-11-25T16:00:00Z",
}


class OrderItemPublic(BaseModel):
    """One line as returned."""

    sku: str
    quantity: int
    unit_price: DecimalString


class OrderPublic(BaseModel):
    """An order as returned to its owner or an admin."""

    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_EXAMPLE]})

    id: UUID
    user_id: int
    status: OrderStatus
    items: list[OrderItemPublic]
    currency: str
    total: DecimalString
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderPublic:
        """Map the domain order."""
        return cls(
            id=order.id,
            user_id=order.user_id,
            status=order.status,
            items=[
                OrderItemPublic(sku=x.sku, quantity=x.quantity, unit_price=x.unit_price)
                for x in order.lines
            ],
            currency=order.currency,
            total=order.total,
            failure_reason=order.failure_reason,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


class OrderPage(BaseModel):
    """One page of GET /orders, newest first; pass next_page_token to get the next one."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [ORDER_EXAMPLE], "next_page_token": None}]}
    )

    items: list[OrderPublic]
    next_page_token: str | None = Field(
        description="Opaque; absent (null) on the last page. Valid only with the same filters."
    )
