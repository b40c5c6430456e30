"""Products, SKUs, prices and categories (value rules, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from catalog_service.domain.errors import InvalidPriceError, UnknownSkuError

# Upper-case letters and digits in dash-separated groups, 3 to 32 characters: "SKU-0001".
SKU_PATTERN = r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$"
SKU_MIN_LENGTH = 3
SKU_MAX_LENGTH = 32
_SKU = re.compile(SKU_PATTERN)
# Prices are Decimal with at most 2 places (NUMERIC(19, 4) in the table, like order lines).
MAX_PRICE = Decimal("1000000.00")
CURRENCY = "EUR"


class Category(StrEnum):
    """The catalog's categories (an unknown one is a 422, never an empty page)."""

    BOOKS = "books"
    CLOTHING = "clothing"
    ELECTRONICS = "electronics"
    GARDEN = "garden"
    HOME = "home"
    KITCHEN = "kitchen"
    OUTDOORS = "outdoors"
    TOYS = "toys"


def is_sku(value: str) -> bool:
    """value has the shape of a sku (it may still be unknown)."""
    return SKU_MIN_LENGTH <= len(value) <= SKU_MAX_LENGTH and _SKU.fullmatch(value) is not None


def check_sku(value: str) -> str:
    """value if it is a well-formed sku, else UnknownSkuError (a malformed sku exists nowhere)."""
    if not is_sku(value):
        raise UnknownSkuError(value)
    return value


def check_price(value: Decimal) -> Decimal:
    """A price the shop may charge: finite, > 0, <= MAX_PRICE, at most 2 decimal places."""
    try:
        ok = value.is_finite() and Decimal(0) < value <= MAX_PRICE
        ok = ok and value == value.quantize(Decimal("0.01"))
    except InvalidOperation:
        ok = False
    if not ok:
        raise InvalidPriceError(f"a price must be > 0, <= {MAX_PRICE}, with at most 2 decimals")
    return value.quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Product:
    """One product as the shop sells it (stock is kept apart: it changes on every order)."""

    sku: str
    name: str
    description: str
    category: Category
    price: Decimal
    currency: str

    def priced(self, price: Decimal) -> Product:
        """This product at another price."""
        return replace(self, price=check_price(price))

    def to_dict(self) -> dict[str, str]:
        """The cached form (JSON-safe; money as a string)."""
        return {
            "sku": self.sku,
            "name": self.name,
            "description": self.description,
            "category": self.category.value,
            "price": str(self.price),
            "currency": self.currency,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Product:
        """The product of its cached form."""
        return cls(
            data["sku"],
            data["name"],
            data["description"],
            Category(data["category"]),
            Decimal(data["price"]),
            data["currency"],
        )
