"""GET /products: filters and tamper-evident keyset page tokens (ordered by sku)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import Field
from shop_common.pagination import InvalidPageTokenError, PageTokenBody, PageTokenCodec

from catalog_service.domain.product import SKU_MAX_LENGTH, SKU_MIN_LENGTH, SKU_PATTERN, Category

__all__ = ["InvalidPageTokenError", "PageSizes", "ProductFilter", "ProductPageTokens"]

MAX_QUERY_LENGTH = 100


@dataclass(frozen=True, slots=True)
class PageSizes:
    """How many products a page holds: `default` when none is asked, never over `maximum`."""

    default: int
    maximum: int

    def size(self, requested: int | None) -> int:
        """The page size to serve for a request asking for `requested` (None: the default)."""
        return min(requested or self.default, self.maximum)


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """Text search (name or description, case-insensitive) and category."""

    text: str | None = None
    category: Category | None = None

    @property
    def canonical(self) -> str:
        """A stable text form, bound into page tokens so a token cannot switch filters."""
        return json.dumps([self.text, self.category.value if self.category else None])


class CursorBody(PageTokenBody):
    """What a GET /products token carries: `s` the last sku of the previous page, `f` filters."""

    s: str = Field(min_length=SKU_MIN_LENGTH, max_length=SKU_MAX_LENGTH, pattern=SKU_PATTERN)


class ProductPageTokens:
    """Encodes the last sku of a page as an HMAC-signed, filter-bound, opaque token."""

    def __init__(self, secret: str) -> None:
        self._codec = PageTokenCodec(secret, CursorBody)

    def encode(self, last_sku: str, product_filter: ProductFilter) -> str:
        """A token meaning "products after last_sku, same filters"."""
        return self._codec.encode(CursorBody(s=last_sku, f=product_filter.canonical))

    def decode(self, token: str, product_filter: ProductFilter) -> str:
        """The sku in token; InvalidPageTokenError when it cannot be trusted."""
        return self._codec.decode(token, product_filter.canonical).s
