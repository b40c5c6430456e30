"""Product reads (cached, counted) and the admin's price changes and restocks.

Reads: a product comes from the product cache (read-through: a miss loads it from the database
once across callers and instances; hot entries are refreshed ahead of expiry) and counts a
view (write-behind). Listing pages and stock are read from the database: a page depends on
filters and position, and stock changes with every order.

Writes: the change and its event (`product.price_changed`, `stock.changed`) commit in one
transaction (outbox); a price change then writes the new product through to the cache, and
every instance's L1 drops its copy.
"""

from __future__ import annotations

from decimal import Decimal

from shop_common.logging import get_logger
from shop_common.messaging.events import ProductPriceChanged, StockChanged, new_event

from catalog_service.domain.errors import UnknownSkuError
from catalog_service.domain.listing import ProductFilter
from catalog_service.domain.product import Product, check_price, check_sku
from catalog_service.domain.stock import check_restock
from catalog_service.service_layer.ports import ProductCache, UnitOfWorkFactory, ViewCounter

log = get_logger(__name__)


class CatalogReads:
    """GET /products, /products/{sku} and its stock."""

    def __init__(self, uow: UnitOfWorkFactory, cache: ProductCache, views: ViewCounter) -> None:
        self._uow = uow
        self._cache = cache
        self._views = views

    async def product(self, sku: str, *, count_view: bool = True) -> Product:
        """The product (cached), counted as a view unless told not to (its image, for one, is
        fetched for every product a listing shows); UnknownSkuError when there is none."""
        check_sku(sku)
        products = self._uow().products
        found = await self._cache.get(sku, lambda: products.get(sku))
        if found is None:
            raise UnknownSkuError(sku)
        if count_view:
            await self._views.seen(sku)
        return found

    async def page(
        self, where: ProductFilter, after: str | None, size: int
    ) -> tuple[list[Product], str | None]:
        """One page by sku and the sku to continue after (None on the last page)."""
        rows = await self._uow().products.page(where, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return rows, rows[-1].sku if more and rows else None

    async def available(self, sku: str) -> int:
        """The sku's available stock (never cached)."""
        check_sku(sku)
        count = await self._uow().products.available(sku)
        if count is None:
            raise UnknownSkuError(sku)
        return count


class CatalogAdmin:
    """Price changes and restocks, each with its event in the same transaction."""

    def __init__(self, uow: UnitOfWorkFactory, cache: ProductCache) -> None:
        self._uow = uow
        self._cache = cache

    async def change_price(self, sku: str, price: Decimal, *, actor: str) -> Product:
        """Set the price; publishes product.price_changed; writes the product through."""
        check_sku(sku)
        price = check_price(price)
        async with self._uow() as uow:
            changed = await uow.products.set_price(sku, price)
            if changed is None:
                raise UnknownSkuError(sku)
            product, old = changed
            event = ProductPriceChanged(
                sku=sku, old_price=old, new_price=product.price, currency=product.currency
            )
            await uow.emit(new_event("product.price_changed", event), aggregate_id=sku)
            await uow.commit()
        await self._cache.put(
            product
        )  # after the commit: the cache never holds an uncommitted price
        log.info("price_changed", sku=sku, old_price=str(old), new_price=str(price), actor=actor)
        return product

    async def restock(self, sku: str, quantity: int, *, actor: str) -> int:
        """Add quantity to the sku's stock; publishes stock.changed; the new available."""
        check_sku(sku)
        check_restock(quantity)
        async with self._uow() as uow:
            available = await uow.products.restock(sku, quantity)
            if available is None:
                raise UnknownSkuError(sku)
            event = StockChanged(sku=sku, available=available, delta=quantity, reason="restock")
            await uow.emit(new_event("stock.changed", event), aggregate_id=sku)
            await uow.commit()
        log.info("stock_restocked", sku=sku, quantity=quantity, available=available, actor=actor)
        return available
