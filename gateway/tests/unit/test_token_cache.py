import time

import pytest
from gateway.token_cache import CachingVerifier
from shop_common.auth import AuthError, TokenIssuer, TokenVerifier, generate_signing_key

KEY = generate_signing_key("k")


class CountingVerifier(TokenVerifier):
    def __init__(self) -> None:
        super().__init__({KEY.kid: KEY.public_pem}, "iss", "aud")
        self.calls = 0

    def verify(self, token: str):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().verify(token)


def test_a_verified_token_is_served_from_memory_until_its_exp() -> None:
    now = [time.time()]
    inner = CountingVerifier()
    verifier = CachingVerifier(inner, clock=lambda: now[0])
    token = TokenIssuer(KEY, "iss", "aud", ttl_seconds=60).issue("5", ["user"])
    assert verifier.verify(token).subject == "5"
    assert verifier.verify(token).roles == frozenset({"user"})
    assert inner.calls == 1
    now[0] += 61  # past the token's exp by the cache's clock: it must be verified again
    verifier.verify(token)
    assert inner.calls == 2


def test_refusals_are_never_cached_and_the_cache_is_bounded() -> None:
    inner = CountingVerifier()
    verifier = CachingVerifier(inner, max_entries=2)
    for _ in range(2):
        with pytest.raises(AuthError):
            verifier.verify("not-a-token")
    assert inner.calls == 2
    issuer = TokenIssuer(KEY, "iss", "aud")
    tokens = [issuer.issue(str(n), []) for n in range(3)]
    for token in tokens:
        verifier.verify(token)
    verifier.verify(tokens[0])  # evicted by the third: verified again
    assert inner.calls == 2 + 3 + 1
    assert verifier.kids == ("k",)
