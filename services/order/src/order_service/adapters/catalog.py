"""CatalogPrices: the PriceBook port on the catalog's HTTP API behind cache, breaker, retry and
deadline (the shape of adapters/users.py's UserLookup, for the catalog).

`GET /products/{sku}` on the catalog (round robin over CATALOG_SERVICE_ADDRESSES) answers the
price. The answer is cached under `price:{sku}` in a MultiLevelCache (L1 in process, L2 in Redis;
a miss loads once per key across callers and instances: single-flight plus the Redis load lock)
and an unknown sku is cached negatively for a short time. Hot products are refreshed ahead of
their expiry (shop_common.cache.RefreshAhead), so they never wait on the catalog. A
product.price_changed event evicts the sku (consumers.catalog_changes → `forget`): Redis, and
every instance's L1 through the cache's coherence channel; the L1 TTL bounds a missed message.

A cached price lets an order through while the catalog is down; an uncached one is a
CatalogUnavailableError (503 + Retry-After at the edge), fast once the breaker is open.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import aiohttp
from shop_common.cache import RefreshAhead
from shop_common.logging import get_logger
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    RetryPolicy,
    resilient_call,
)

from order_service.adapters.users import UserCache
from order_service.service_layer.prices import CatalogUnavailableError, Price, UnknownSkuError
from order_service.settings import Settings

log = get_logger(__name__)


def price_cache_key(sku: str) -> str:
    """The cache key of a sku's price."""
    return f"price:{sku}"


class CatalogAnswerError(Exception):
    """The catalog answered something that is not a product (counted as a failure)."""


class CatalogPrices:
    """Prices from the catalog, cached; evicted when the catalog says a price changed."""

    def __init__(
        self,
        addresses: list[str],
        cache: UserCache,
        breaker: CircuitBreaker,
        *,
        retry: RetryPolicy,
        deadline_seconds: float,
        attempt_timeout_seconds: float,
        ttl_seconds: float,
        negative_ttl_seconds: float,
        default_retry_after: int,
        refresh_ahead: RefreshAhead | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("the catalog needs at least one address")
        self._bases = itertools.cycle([f"http://{a}" for a in addresses])
        self._cache = cache
        self._breaker = breaker
        self._retry = retry
        self._deadline_seconds = deadline_seconds
        self._attempt_timeout = attempt_timeout_seconds
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._default_retry_after = default_retry_after
        self._ahead = refresh_ahead
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, cache: UserCache, refresh_ahead: RefreshAhead | None = None
    ) -> CatalogPrices:
        """The lookup with its breaker, retry and deadline from settings."""
        breaker = CircuitBreaker(
            "catalog-service",
            BreakerConfig(
                consecutive_failures=settings.catalog_breaker_failures,
                recovery_timeout=settings.catalog_breaker_recovery_seconds,
            ),
        )
        addresses = [a.strip() for a in settings.catalog_service_addresses.split(",") if a.strip()]
        return cls(
            addresses,
            cache,
            breaker,
            retry=RetryPolicy(max_attempts=settings.catalog_lookup_attempts, max_backoff=0.2),
            deadline_seconds=settings.catalog_lookup_deadline_seconds,
            attempt_timeout_seconds=settings.catalog_lookup_attempt_timeout_seconds,
            ttl_seconds=settings.price_cache_ttl_seconds,
            negative_ttl_seconds=settings.price_cache_negative_ttl_seconds,
            default_retry_after=settings.catalog_unavailable_retry_after_seconds,
            refresh_ahead=refresh_ahead,
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def price_of(self, sku: str) -> Price:
        """The sku's current price, from the cache or the catalog (see the module docstring)."""

        async def load() -> dict[str, str] | None:
            return await self._fetch(sku)

        key = price_cache_key(sku)
        if self._ahead is not None:
            cached = await self._ahead.get(key, load)
        else:
            cached = await self._cache.get_or_load(
                key, load, ttl=self._ttl, negative_ttl=self._negative_ttl
            )
        if cached is None:
            raise UnknownSkuError(sku)
        return Price(sku, Decimal(cached["price"]), cached["currency"])

    async def forget(self, sku: str) -> None:
        """Drop the cached price (every instance's L1 through the coherence channel)."""
        await self._cache.delete(price_cache_key(sku))

    async def _fetch(self, sku: str) -> dict[str, str] | None:
        try:
            return await resilient_call(
                self._get,
                sku,
                breaker=self._breaker,
                retry=self._retry,
                timeout=self._attempt_timeout,
                deadline=Deadline.after(self._deadline_seconds),
            )
        except CircuitOpenError as exc:
            raise CatalogUnavailableError(
                "the catalog is unavailable (circuit open)", math.ceil(exc.retry_after) or 1
            ) from exc
        except (aiohttp.ClientError, CatalogAnswerError, TimeoutError, OSError) as exc:
            log.warning("price_lookup_failed", sku=sku, error=type(exc).__name__)
            raise CatalogUnavailableError(
                "the catalog did not answer", self._default_retry_after
            ) from exc

    async def _get(self, sku: str) -> dict[str, str] | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(raise_for_status=False)
        url = f"{next(self._bases)}/products/{quote(sku, safe='')}"
        async with self._session.get(url, headers={"Accept": "application/json"}) as response:
            if response.status in (404, 422):  # unknown, or not even a sku: nothing to sell
                return None
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message="catalog error"
                )
            body: Any = await response.json()
        try:
            price = Decimal(str(body["price"]))
            currency = str(body["currency"])
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise CatalogAnswerError("the catalog answered no price") from exc
        return {"price": str(price), "currency": currency}
