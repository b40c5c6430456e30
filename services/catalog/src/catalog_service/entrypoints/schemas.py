"""The HTTP bodies of the catalog API (pydantic), and the product image (a generated SVG)."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from html import escape
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from catalog_service.domain.product import MAX_PRICE, Product
from catalog_service.domain.stock import MAX_RESTOCK


class ProductPublic(BaseModel):
    """A product as clients see it (money as a decimal string, like order lines)."""

    sku: str
    name: str
    description: str
    category: str
    price: str = Field(pattern=r"^\d+\.\d{2}$", examples=["19.99"])
    currency: str
    image_url: str

    @classmethod
    def of(cls, product: Product, prefix: str = "") -> ProductPublic:
        """The public form of product; image_url under the path prefix the request came in by."""
        return cls(
            sku=product.sku,
            name=product.name,
            description=product.description,
            category=product.category.value,
            price=f"{product.price:.2f}",
            currency=product.currency,
            image_url=f"{prefix}/products/{product.sku}/image",
        )


class ProductPage(BaseModel):
    """One page of products; next_page_token continues it (absent on the last page)."""

    items: list[ProductPublic]
    next_page_token: str | None = None


class StockPublic(BaseModel):
    """A sku's available stock."""

    sku: str
    available: int


# A price as the order service's lines carry money: a decimal string, never a JSON number (a
# float is not money), no exponent, sign, whitespace or leading zero, at most 2 decimals.
PRICE_PATTERN = r"^(?:0|[1-9][0-9]{0,6})(?:\.[0-9]{1,2})?$"


def _price_text(value: object) -> object:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "decimal_string_type", 'give the price as a decimal string like "12.50"'
        )
    if not re.fullmatch(PRICE_PATTERN, value):
        raise PydanticCustomError(
            "decimal_string_format",
            'a price is a decimal string like "12.50": no exponent, sign, spaces or '
            "leading zeros, at most 2 decimals",
        )
    return value


class PriceUpdate(BaseModel):
    """PUT /products/{sku}/price: the new price, a decimal string (2 places at most, > 0)."""

    model_config = ConfigDict(extra="forbid")

    price: Annotated[
        Decimal,
        BeforeValidator(_price_text),
        WithJsonSchema({"type": "string", "pattern": PRICE_PATTERN, "examples": ["12.50"]}),
        Field(gt=0, le=MAX_PRICE, max_digits=9, decimal_places=2),
    ]


class Restock(BaseModel):
    """POST /products/{sku}/restock: units to add, a JSON integer (not `true`, `"3"` or `3.0`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    quantity: int = Field(ge=1, le=MAX_RESTOCK)


PALETTE = ("#e76f51", "#2a9d8f", "#e9c46a", "#264653", "#f4a261", "#8ab17d", "#6d597a", "#457b9d")


def product_svg(product: Product) -> str:
    """A 320x240 SVG: a colour of the sku, the product's initials and name (all text escaped)."""
    digest = hashlib.sha256(product.sku.encode()).digest()
    background, accent = PALETTE[digest[0] % len(PALETTE)], PALETTE[digest[1] % len(PALETTE)]
    initials = "".join(word[0] for word in product.name.split()[:2] if word[:1].isalnum()) or "?"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
        f'<rect width="320" height="240" fill="{background}"/>'
        f'<circle cx="160" cy="105" r="60" fill="{accent}"/>'
        '<text x="160" y="125" font-family="sans-serif" font-size="48" text-anchor="middle"'
        f' fill="#ffffff">{escape(initials.upper())}</text>'
        '<text x="160" y="215" font-family="sans-serif" font-size="18" text-anchor="middle"'
        f' fill="#ffffff">{escape(product.name)}</text>'
        "</svg>"
    )
