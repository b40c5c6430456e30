"""Request/response models of the order API: exact decimals as strings, ISO 4217 currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer

from order_service.domain.money import CURRENCY_EXPONENTS
from order_service.domain.order import MAX_LINES, Order, OrderStatus, WantedLine

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


# The catalog's sku shape (catalog_service.domain.product.SKU_PATTERN, 3 to 32 characters): a
# line whose sku cannot exist is refused before the catalog is asked.
SKU_PATTERN = r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$"


class OrderItemCreate(BaseModel):
    """One line of a new order: what and how many. The shop prices it (the catalog's current
    price when the order is placed); a `unit_price` is refused like any unknown field.

    Strict: `quantity` is a JSON integer (not `true`, `"2"` or `2.0`).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    sku: str = Field(min_length=3, max_length=32, pattern=SKU_PATTERN, examples=["BOOK-001"])
    quantity: int = Field(
        gt=0, le=10_000, strict=True, examples=[2], description="A JSON integer, 1 to 10000."
    )


class OrderCreate(BaseModel):
    """Body of POST /orders: skus and quantities; prices and the total are the shop's. Strictly
    typed: nothing is coerced (a bool is not a number, a numeric string not a number, a float
    not an integer)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"items": [{"sku": "BOOK-001", "quantity": 2}], "currency": "EUR"}]
        },
    )

    items: list[OrderItemCreate] = Field(min_length=1, max_length=MAX_LINES)
    currency: CurrencyCode | None = Field(
        default=None,
        description="Optional: the currency the client expects to pay in; it must be the one "
        "the shop prices the items in (else 422). Absent: the shop's.",
    )

    def wanted(self) -> list[WantedLine]:
        """The lines as asked for (unpriced)."""
        return [WantedLine(i.sku, i.quantity) for i in self.items]


ORDER_EXAMPLE: dict[str, JsonValue] = {
    "id": "0b7e3f5c-6a0e-4a59-9a53-2f8f3b1a7c11",
    "user_id": 42,
    "status": "PENDING",
    "items": [{"sku": "BOOK-001", "quantity": 2, "unit_price": "10.25"}],
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
