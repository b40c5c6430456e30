"""gateway.service_layer.cache_step against an in-memory store: HIT/MISS, 304, what is stored,
caller scopes, store failures, eviction of a user's entries."""

from __future__ import annotations

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
