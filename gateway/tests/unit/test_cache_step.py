"""gateway.service_layer.cache_step against an in-memory store: HIT/MISS, 304, what is stored,
caller scopes, store failures, eviction of a user's entries."""

from __future__ import annotations

import pytest
from gateway.domain.cache_rules import auth_scope
from gateway.domain.replies import Reply
from gateway.domain.routes import Route, RouteMatch
from gateway.service_layer.cache_step import MAX_CACHED_BODY, CacheStep

from .fakes import CountingFetch, FakeBody, FakeResponseCacheStore

ORDERS = RouteMatch(
    Route(
        name="o", path="/api/o/**", methods=("GET",), backend="order-service", cache_ttl_seconds=30
    )
)
USER = RouteMatch(
    Route(
        name="u",
        path="/api/users/{user_id}",
        methods=("GET",),
        backend="user-service",
        cache_ttl_seconds=10,
    ),
    params={"user_id": "7"},
)
PRODUCTS = Route(
    name="p",
    path="/api/products/**",
    methods=("GET",),
    backend="catalog-service",
    auth=False,
    anonymous=True,
    cache_ttl_seconds=30,
)
LISTING = RouteMatch(PRODUCTS)
BOOK = RouteMatch(PRODUCTS, rest="BOOK-001")
BOOK_IMAGE = RouteMatch(PRODUCTS, rest="BOOK-001/image")
JSON = [("Content-Type", "application/json")]


def x_cache(reply: Reply) -> str | None:
    return reply.header("x-cache") or dict(reply.extra).get("X-Cache")


async def test_a_miss_is_fetched_and_stored_then_served_as_a_hit() -> None:
    store, fetch = FakeResponseCacheStore(), CountingFetch()
    step = CacheStep(store)
    first = await step.serve(ORDERS, "/api/o/1", "b=2&a=1", [], None, fetch)
    again = await step.serve(ORDERS, "/api/o/1", "a=1&b=2", [], None, fetch)
    assert fetch.calls == 1
    assert (x_cache(first), x_cache(again)) == ("MISS", "HIT")
    assert again.body == first.body == b'{"n":1}'
    assert again.header("etag") == first.header("etag")
    assert list(store.ttls.values()) == [30]


async def test_callers_never_share_entries() -> None:
    store, fetch = FakeResponseCacheStore(), CountingFetch()
    step = CacheStep(store)
    for user in ("1", "2", None, "1"):
        await step.serve(ORDERS, "/api/o/1", "", [], user, fetch)
    assert fetch.calls == 3
    assert set(store.indexes) == {auth_scope("1"), auth_scope("2"), auth_scope(None)}


async def test_a_matching_if_none_match_gets_304_without_a_body() -> None:
    step = CacheStep(FakeResponseCacheStore())
    fetch = CountingFetch()
    stored = await step.serve(ORDERS, "/api/o/1", "", [], None, fetch)
    etag = stored.header("etag")
    assert etag is not None
    hit = await step.serve(ORDERS, "/api/o/1", "", [("If-None-Match", etag)], None, fetch)
    assert (hit.status, hit.body, hit.header("content-type")) == (304, b"", None)
    fresh = FakeResponseCacheStore()
    miss = await CacheStep(fresh).serve(
        ORDERS, "/api/o/1", "", [("If-None-Match", etag)], None, CountingFetch()
    )
    assert miss.status == 304  # the fetched body has the same ETag: stored, then 304


async def test_no_cache_from_the_client_goes_to_the_backend_and_no_store_stores_nothing() -> None:
    store, fetch = FakeResponseCacheStore(), CountingFetch()
    step = CacheStep(store)
    await step.serve(ORDERS, "/api/o/1", "", [], None, fetch)
    await step.serve(ORDERS, "/api/o/1", "", [("Cache-Control", "no-cache")], None, fetch)
    assert fetch.calls == 2
    await step.serve(ORDERS, "/api/o/2", "", [("Cache-Control", "no-store")], None, fetch)
    assert len(store.entries) == 1


async def test_only_json_200s_within_the_size_limit_are_stored() -> None:
    store = FakeResponseCacheStore()
    step = CacheStep(store)
    html = CountingFetch(Reply(200, [("Content-Type", "text/html")], b"<p>"))
    missing = CountingFetch(Reply(404, JSON, b"{}"))
    private = CountingFetch(Reply(200, [*JSON, ("Cache-Control", "private")], b"{}"))
    for fetch in (html, missing, private):
        await step.serve(ORDERS, "/api/o/1", "", [], None, fetch)
    assert store.entries == {}
    big = FakeBody(b"[" + b"0," * MAX_CACHED_BODY + b"0]")
    streamed = await step.serve(
        ORDERS, "/api/o/1", "", [], None, CountingFetch(Reply(200, JSON, big))
    )
    assert streamed.body is big and store.entries == {}  # passed through, still streamed
    small = FakeBody(b'{"ok":true}')
    buffered = await step.serve(
        ORDERS, "/api/o/1", "", [], None, CountingFetch(Reply(200, JSON, small))
    )
    assert buffered.body == b'{"ok":true}' and len(store.entries) == 1


async def test_hop_by_hop_and_per_request_headers_are_not_replayed() -> None:
    headers = [*JSON, ("X-Request-ID", "r1"), ("Connection", "close"), ("X-Kept", "1")]
    step = CacheStep(FakeResponseCacheStore())
    await step.serve(ORDERS, "/api/o/1", "", [], None, CountingFetch(Reply(200, headers, b"{}")))
    hit = await step.serve(ORDERS, "/api/o/1", "", [], None, CountingFetch())
    names = {k.lower() for k, _ in hit.headers}
    assert "x-kept" in names and not names & {"x-request-id", "connection"}


async def test_a_failing_store_is_a_miss_and_never_fails_the_request() -> None:
    store, fetch = FakeResponseCacheStore(), CountingFetch()
    store.down = True
    step = CacheStep(store)
    for _ in range(2):
        reply = await step.serve(ORDERS, "/api/o/1", "", [], None, fetch)
        assert reply.status == 200 and x_cache(reply) == "MISS"
    assert fetch.calls == 2


async def test_evicting_a_user_drops_their_entries_and_entries_about_them() -> None:
    store = FakeResponseCacheStore()
    step = CacheStep(store)
    await step.serve(ORDERS, "/api/o/mine", "", [], "7", CountingFetch())  # for user 7
    await step.serve(USER, "/api/users/7", "", [], "1", CountingFetch())  # about user 7
    await step.serve(ORDERS, "/api/o/theirs", "", [], "8", CountingFetch())
    assert await step.evict_user(7) == 2
    assert len(store.entries) == 1
    assert await step.evict_user(7) == 0


async def test_the_key_holds_the_accept_header_so_each_representation_has_its_entry() -> None:
    store, fetch = FakeResponseCacheStore(), CountingFetch()
    step = CacheStep(store)
    json_accept = [("Accept", "application/json")]
    await step.serve(LISTING, "/api/products", "q=tea", json_accept, None, fetch)
    other = await step.serve(
        LISTING, "/api/products", "q=tea", [("Accept", "text/csv")], None, fetch
    )
    none = await step.serve(LISTING, "/api/products", "q=tea", [], None, fetch)
    same = await step.serve(LISTING, "/api/products", "q=tea", json_accept, None, fetch)
    # The same value written another way (whitespace, one field or two) is the same entry.
    spaced = await step.serve(
        LISTING, "/api/products", "q=tea", [("accept", "application/json ")], None, fetch
    )
    assert [x_cache(r) for r in (other, none, same, spaced)] == ["MISS", "MISS", "HIT", "HIT"]
    assert fetch.calls == 3
    split = [("Accept", "a/b"), ("Accept", "c/d")]
    await step.serve(LISTING, "/api/products", "", split, None, fetch)
    joined = await step.serve(LISTING, "/api/products", "", [("Accept", "a/b,c/d")], None, fetch)
    assert x_cache(joined) == "HIT"


async def test_the_key_holds_the_query_string_whatever_its_order() -> None:
    store, fetch = FakeResponseCacheStore(), CountingFetch()
    step = CacheStep(store)
    await step.serve(LISTING, "/api/products", "q=tea&category=food", [], None, fetch)
    reordered = await step.serve(LISTING, "/api/products", "category=food&q=tea", [], None, fetch)
    other_page = await step.serve(
        LISTING, "/api/products", "q=tea&category=food&page_token=x", [], None, fetch
    )
    assert (x_cache(reordered), x_cache(other_page)) == ("HIT", "MISS")


@pytest.mark.parametrize("vary", ["*", "Accept-Language", "accept, Cookie"])
async def test_a_response_varying_by_what_the_key_does_not_hold_is_not_stored(vary: str) -> None:
    store = FakeResponseCacheStore()
    step = CacheStep(store)
    fetch = CountingFetch(Reply(200, [*JSON, ("Vary", vary)], b"{}"))
    await step.serve(LISTING, "/api/products", "", [], None, fetch)
    assert store.entries == {}


async def test_a_response_varying_by_accept_only_is_stored() -> None:
    store = FakeResponseCacheStore()
    step = CacheStep(store)
    fetch = CountingFetch(Reply(200, [*JSON, ("Vary", "Accept"), ("vary", "accept")], b"{}"))
    await step.serve(LISTING, "/api/products", "", [], None, fetch)
    assert len(store.entries) == 1


async def test_a_price_change_evicts_the_products_entries_and_every_listing_page() -> None:
    store = FakeResponseCacheStore()
    step = CacheStep(store)
    await step.serve(LISTING, "/api/products", "", [], None, CountingFetch())
    await step.serve(LISTING, "/api/products", "category=books", [], None, CountingFetch())
    await step.serve(BOOK, "/api/products/BOOK-001", "", [], None, CountingFetch())
    await step.serve(BOOK_IMAGE, "/api/products/BOOK-001/image", "", [], None, CountingFetch())
    other = RouteMatch(PRODUCTS, rest="TOYS-001")
    await step.serve(other, "/api/products/TOYS-001", "", [], None, CountingFetch())
    assert await step.evict_product("BOOK-001", listings=False) == 2  # a stock change
    assert len(store.entries) == 3
    assert await step.evict_product("BOOK-001", listings=True) == 2  # a price change: the pages
    assert list(store.indexes) == [auth_scope(None), "resource:product:TOYS-001"]
