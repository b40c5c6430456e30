"""What the use cases need of the catalog (the `PriceBook` port) and its errors.

The shop decides prices: a new order's lines carry a sku and a quantity, never a price, and each
line is priced at the catalog's current price when the order is placed. A price that changed
after the client saw it is charged at the shop's price at order time; the order keeps the unit
price it was priced at (later price changes never touch it). adapters/catalog.py implements
the port (HTTP behind cache, breaker, retry and deadline); the HTTP entrypoint maps the errors
to problem+json.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class UnknownSkuError(Exception):
    """The catalog sells no product with this sku (422 naming it at the edge)."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"the catalog has no product {sku!r}")
        self.sku = sku


class CatalogUnavailableError(Exception):
    """The catalog cannot answer now and the price is not cached (503 + Retry-After)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Price:
    """The shop's current price of one sku."""

    sku: str
    amount: Decimal
    currency: str


class PriceBook(Protocol):
    """The shop's current prices: one sku's (cached), and forgetting one that changed."""

    async def price_of(self, sku: str) -> Price:
        """The current price, or UnknownSkuError / CatalogUnavailableError."""
        ...

    async def forget(self, sku: str) -> None:
        """Drop what is cached of this sku's price (every instance)."""
        ...
