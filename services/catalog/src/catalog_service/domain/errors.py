"""Domain errors of the catalog (the HTTP edge maps each to one status)."""

from __future__ import annotations


class CatalogError(Exception):
    """Base of the catalog's domain errors."""


class UnknownSkuError(CatalogError):
    """No product has this sku (or it is not a sku at all)."""

    def __init__(self, sku: str) -> None:
        super().__init__("no such product")
        self.sku = sku


class InvalidPriceError(CatalogError):
    """A price the shop may not set."""


class InvalidQuantityError(CatalogError):
    """A quantity outside what a restock or a reservation line may hold."""


class StockLimitError(CatalogError):
    """A restock that would take a sku's stock past MAX_STOCK."""
