"""The response-cache step of the pipeline: HIT (or 304) from the store, else fetch and maybe store.

Only JSON bodies up to a size limit are stored (streams such as NDJSON or SSE pass through).
Store errors never fail a request: a lookup error is a MISS, a store error is logged. The store
is anything shaped like ResponseCacheStore (Redis in gateway.adapters.response_cache, a dict in
the unit tests); the rules are gateway.domain.cache_rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol
from urllib.parse import parse_qsl

from prometheus_client import Counter
from shop_common.logging import get_logger
from shop_common.observability import span_event

from gateway.domain.cache_rules import (
    PRODUCT_LISTING_TAG,
    CachedResponse,
    auth_scope,
    cache_key,
    etag_matches,
    may_serve_from_cache,
    may_store,
    product_tags,
    resource_tags,
    strong_etag,
    user_tags,
    vary_values,
)
from gateway.domain.errors import StoreUnavailableError
from gateway.domain.headers import HOP_BY_HOP
from gateway.domain.replies import Reply, header_value
from gateway.domain.routes import RouteMatch


class ResponseCacheStore(Protocol):
    """Where entries live; every method raises StoreUnavailableError when the store cannot answer."""

    prefix: str

    async def get(self, key: str) -> CachedResponse | None: ...

    async def put(
        self,
        key: str,
        scope: str,
        response: CachedResponse,
        ttl_seconds: float,
        tags: Iterable[str] = (),
    ) -> None: ...

    async def evict_scope(self, scope: str) -> int: ...


CACHE_LOOKUPS = Counter(
    "gateway_cache_lookups_total",
    "Response-cache lookups by route and result (hit, miss); hit ratio = hit / (hit + miss).",
    ["route", "result"],
)
MAX_CACHED_BODY = 256 * 1024
_NOT_REPLAYED = HOP_BY_HOP | {"content-length", "x-request-id", "date", "server", "x-cache"}
_log = get_logger(__name__)
Fetch = Callable[[], Awaitable[Reply]]


def _is_json(reply: Reply) -> bool:
    content_type = (reply.header("content-type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _fields(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Header fields by lower-case name, repeated fields joined (RFC 9110 §5.3)."""
    fields: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        fields[lower] = f"{fields[lower]}, {value}" if lower in fields else value
    return fields


def _replay(entry: CachedResponse, if_none_match: str | None) -> Reply:
    headers = [*entry.headers, ("ETag", entry.etag), ("X-Cache", "HIT")]
    if etag_matches(if_none_match, entry.etag):
        return Reply(304, [(k, v) for k, v in headers if k.lower() != "content-type"], b"")
    return Reply(entry.status, headers, entry.body)


class CacheStep:
    """Wraps a fetch of a cacheable GET with lookup, conditional answers and storing."""

    def __init__(self, cache: ResponseCacheStore) -> None:
        self.cache = cache

    async def serve(
        self,
        match: RouteMatch,
        path: str,
        query_string: str,
        request_headers: Sequence[tuple[str, str]],
        user_id: str | None,
        fetch: Fetch,
    ) -> Reply:
        """The reply for a GET through the cache (X-Cache HIT or MISS; 304 on a matching ETag)."""
        route = match.route
        request_cc = header_value(request_headers, "cache-control")
        if_none_match = header_value(request_headers, "if-none-match")
        scope = auth_scope(user_id)
        key = cache_key(
            self.cache.prefix,
            "GET",
            path,
            parse_qsl(query_string, keep_blank_values=True),
            scope,
            vary_values(route.cache_vary, request_headers),
        )
        if may_serve_from_cache(request_cc):
            try:
                entry = await self.cache.get(key)
            except StoreUnavailableError as exc:
                _log.warning("cache_lookup_failed", error=str(exc))
                entry = None
            if entry is not None:
                CACHE_LOOKUPS.labels(route.name, "hit").inc()
                span_event("cache.hit", {"cache.name": "response", "route": route.name})
                return _replay(entry, if_none_match)
        CACHE_LOOKUPS.labels(route.name, "miss").inc()
        span_event("cache.miss", {"cache.name": "response", "route": route.name})
        reply = await fetch()
        reply.extra.append(("X-Cache", "MISS"))
        if not _is_json(reply) or not may_store(
            reply.status,
            request_cc,
            _fields(reply.headers),
            authenticated=user_id is not None,
            keyed_by=route.cache_vary,
        ):
            return reply
        body = reply.body
        if not isinstance(body, bytes):
            buffered = await body.buffer(MAX_CACHED_BODY)
            if buffered is None:
                return reply
            body = reply.body = buffered
        etag = reply.header("etag") or strong_etag(body)
        kept = tuple((k, v) for k, v in reply.headers if k.lower() not in _NOT_REPLAYED | {"etag"})
        entry = CachedResponse(reply.status, kept, body, etag)
        try:
            await self.cache.put(key, scope, entry, route.cache_ttl_seconds, resource_tags(match))
        except StoreUnavailableError as exc:
            _log.warning("cache_store_failed", error=str(exc))
        reply.headers = [*kept, ("ETag", etag)]
        if etag_matches(if_none_match, etag):
            return Reply(
                304,
                [(k, v) for k, v in reply.headers if k.lower() != "content-type"],
                b"",
                reply.extra,
            )
        return reply

    async def evict_user(self, user_id: int) -> int:
        """Drop every entry of the user's scope and every entry about the user."""
        return await self._evict(user_tags(user_id))

    async def evict_product(self, sku: str, *, listings: bool) -> int:
        """Drop every entry about the product, and every listing page when `listings` (a price
        shows on them)."""
        return await self._evict((*product_tags(sku), *([PRODUCT_LISTING_TAG] if listings else [])))

    async def _evict(self, tags: Iterable[str]) -> int:
        evicted = 0
        for tag in tags:
            evicted += await self.cache.evict_scope(tag)
        return evicted
