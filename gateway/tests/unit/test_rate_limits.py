"""gateway.service_layer.rate_limits against an in-memory store: limits, identities, fail modes."""

from __future__ import annotations

import pytest
from gateway.domain.errors import RateLimiterUnavailableError
from gateway.domain.routes import RateLimitConfig
from gateway.service_layer.rate_limits import UNCHECKED, RouteRateLimiter

from .fakes import FakeRateLimitStore


async def test_admits_up_to_the_limit_then_refuses_with_retry_after() -> None:
    limiter = RouteRateLimiter(FakeRateLimitStore())
    config = RateLimitConfig(limit=2, window_seconds=30)
    first, second, third = [await limiter.check("user:1", "r", config) for _ in range(3)]
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed
    assert third.headers()["Retry-After"] == "30"
    assert third.headers()["RateLimit-Policy"] == '"default";q=2;w=30'


async def test_the_store_gets_the_route_identity_and_window_in_ms() -> None:
    store = FakeRateLimitStore()
    limiter = RouteRateLimiter(store)
    await limiter.check("ip:192.0.2.1", "orders", RateLimitConfig(limit=5, window_seconds=0.0001))
    assert store.hits == [("orders", "ip:192.0.2.1", 5, 1)]  # never a zero-length window


async def test_identities_and_routes_count_apart() -> None:
    limiter = RouteRateLimiter(FakeRateLimitStore())
    config = RateLimitConfig(limit=1, window_seconds=60)
    assert (await limiter.check("a", "r", config)).allowed
    assert not (await limiter.check("a", "r", config)).allowed
    assert (await limiter.check("b", "r", config)).allowed
    assert (await limiter.check("a", "other", config)).allowed


async def test_a_failing_store_lets_fail_open_routes_through_uncounted() -> None:
    store = FakeRateLimitStore()
    store.down = True
    limiter = RouteRateLimiter(store)
    before = UNCHECKED.labels("unit-open", "open")._value.get()
    decision = await limiter.check("a", "unit-open", RateLimitConfig(limit=1, window_seconds=1))
    assert decision.allowed and not decision.checked
    assert decision.headers() == {}  # no RateLimit fields it could not compute
    assert UNCHECKED.labels("unit-open", "open")._value.get() == before + 1


async def test_a_failing_store_refuses_fail_closed_routes() -> None:
    store = FakeRateLimitStore()
    store.down = True
    limiter = RouteRateLimiter(store)
    before = UNCHECKED.labels("unit-closed", "closed")._value.get()
    with pytest.raises(RateLimiterUnavailableError):
        await limiter.check(
            "a", "unit-closed", RateLimitConfig(limit=1, window_seconds=1, fail="closed")
        )
    assert UNCHECKED.labels("unit-closed", "closed")._value.get() == before + 1


async def test_counting_resumes_when_the_store_answers_again() -> None:
    store = FakeRateLimitStore()
    limiter = RouteRateLimiter(store)
    config = RateLimitConfig(limit=1, window_seconds=60)
    store.down = True
    assert not (await limiter.check("a", "r", config)).checked
    store.down = False
    assert (await limiter.check("a", "r", config)).checked
    assert not (await limiter.check("a", "r", config)).allowed
