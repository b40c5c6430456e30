"""Request/response models of the order API: exact decimals as strings, ISO 4217 currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, PlainSerializer

from order_service.domain.money import CURRENCY_EXPONENTS
from order_service.domain.order import MAX_LINES, Order, OrderLine, OrderStatus


def _refuse_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError('give amounts as decimal strings like "10.25", not JSON numbers')
    return value


# A decimal given as a JSON string ("10.25"), never a float; serialised back as a string.
DecimalString = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(
        strict=False,
        json_schema_extra={"type": "string", "pattern": r"^\d{1,12}(\.\d{1,4})?$"},
        examples=["10.25"],
    ),
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
    """One line of a new order."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", examples=["SKU-1"])
    quantity: int = Field(gt=0, le=10_000, examples=[2])
    unit_price: DecimalString


class OrderCreate(BaseModel):
    """Body of POST /orders; the total is computed by the server."""

    model_config = ConfigDict(
        extra="forbid",
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
