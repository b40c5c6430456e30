"""The interceptor's building blocks: token cache and rate limiter."""

from __future__ import annotations

import pytest
from shop_common.auth import AuthError, TokenIssuer, TokenVerifier, generate_signing_key
from user_service.grpc.interceptors import RateLimiter, TokenCache


def test_token_cache_verifies_once_and_rejects_bad_tokens() -> None:
    key = generate_signing_key("k")
    verifier = TokenVerifier({key.kid: key.public_pem}, "iss", "aud")
    calls = []
    original = verifier.verify

    def counting(token: str):  # type: ignore[no-untyped-def]
        calls.append(token)
        return original(token)

    verifier.verify = counting  # type: ignore[method-assign]
    cache = TokenCache(verifier, cache_seconds=30)
    token = TokenIssuer(key, "iss", "aud").issue("7", ["customer"])
    assert cache.principal(token).subject == "7"
    assert cache.principal(token).subject == "7"
    assert len(calls) == 1
    with pytest.raises(AuthError):
        cache.principal(token + "x")


def test_rate_limiter_is_per_caller() -> None:
    limiter = RateLimiter(rate=0.0001, burst=2)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
