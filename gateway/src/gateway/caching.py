"""The response-cache step of the pipeline: HIT (or 304) from Redis, else fetch and maybe store.

Only JSON bodies up to a size limit are stored (streams such as NDJSON or SSE pass through).
Redis errors never fail a request: a lookup error is a MISS, a store error is logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

import structlog
from prometheus_client import Counter
from redis.exceptions import RedisError

from gateway.headers import HOP_BY_HOP
from gateway.replies import Reply, header_value
from gateway.response_cache import (
    CachedResponse,
    ResponseCache,
    auth_scope,
    cache_key,
    etag_matches,
    may_serve_from_cache,
    may_store,
    strong_etag,
)
from gateway.routes import RouteMatch

CACHE_LOOKUPS = Counter(
    "gateway_cache_lookups_total",
    "Response-cache lookups by route and result (hit, miss); hit ratio = hit / (hit + miss).",
    ["route", "result"],
)
MAX_CACHED_BODY = 256 * 1024
_NOT_REPLAYED = HOP_BY_HOP | {"content-length", "x-request-id", "date", "server", "x-cache"}
_log = structlog.get_logger(__name__)
Fetch = Callable[[], Awaitable[Reply]]


def resource_tags(match: RouteMatch) -> tuple[str, ...]:
    """Tags an entry is also indexed under: /api/users/<id>... → "resource:user:<id>"."""
    if match.route.backend != "user-service":
        return ()
    user_id = match.params.get("user_id") or match.rest.split("/", 1)[0]
    return (f"resource:user:{user_id}",) if user_id.isdigit() else ()


def user_tags(user_id: int) -> tuple[str, ...]:
    """Everything cached for or about a user: their own scope and responses about them."""
    return (auth_scope(str(user_id)), f"resource:user:{user_id}")


def _is_json(reply: Reply) -> bool:
    content_type = (reply.header("content-type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _replay(entry: CachedResponse, if_none_match: str | None) -> Reply:
    headers = [*entry.headers, ("ETag", entry.etag), ("X-Cache", "HIT")]
    if etag_matches(if_none_match, entry.etag):
        return Reply(304, [(k, v) for k, v in headers if k.lower() != "content-type"], b"")
    return Reply(entry.status, headers, entry.body)


class CacheStep:
    """Wraps a fetch of a cacheable GET with lookup, conditional answers and storing."""

    def __init__(self, cache: ResponseCache) -> None:
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
            self.cache.prefix, "GET", path, parse_qsl(query_string, keep_blank_values=True), scope
        )
        if may_serve_from_cache(request_cc):
            try:
                entry = await self.cache.get(key)
            except (RedisError, OSError) as exc:
                _log.warning("cache_lookup_failed", error=repr(exc))
                entry = None
            if entry is not None:
                CACHE_LOOKUPS.labels(route.name, "hit").inc()
                return _replay(entry, if_none_match)
        CACHE_LOOKUPS.labels(route.name, "miss").inc()
        reply = await fetch()
        reply.extra.append(("X-Cache", "MISS"))
        if not _is_json(reply) or not may_store(
            reply.status, request_cc, dict(reply.headers), authenticated=user_id is not None
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
        except (RedisError, OSError) as exc:
            _log.warning("cache_store_failed", error=repr(exc))
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
        evicted = 0
        for tag in user_tags(user_id):
            evicted += await self.cache.evict_scope(tag)
        return evicted
