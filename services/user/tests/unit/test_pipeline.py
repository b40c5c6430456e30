"""The interceptor's building blocks: the rate limiter (the token cache is shop_common.auth's
CachingTokenVerifier, tested in libs/common/tests/unit/test_token_cache.py)."""

from __future__ import annotations

from user_service.entrypoints.grpc.interceptors import RateLimiter


def test_rate_limiter_is_per_caller() -> None:
    limiter = RateLimiter(rate=0.0001, burst=2)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
