"""CachingTokenVerifier: RS256 once per token, never past its exp, max age or key."""

import time

import pytest
from shop_common.auth import AuthError, CachingTokenVerifier, TokenIssuer, generate_signing_key

KEY = generate_signing_key("k")
OTHER = generate_signing_key("k2")


class CountingVerifier(CachingTokenVerifier):
    """Counts the full (signature-checking) verifications."""

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(
            {KEY.kid: KEY.public_pem, OTHER.kid: OTHER.public_pem}, "iss", "aud", **kwargs
        )
        self.full = 0


@pytest.fixture(autouse=True)
def count_full_verifications(monkeypatch: pytest.MonkeyPatch) -> None:
    from shop_common import auth

    original = auth.TokenVerifier.verify

    def counted(self, token):  # type: ignore[no-untyped-def]
        if isinstance(self, CountingVerifier):
            self.full += 1
        return original(self, token)

    monkeypatch.setattr(auth.TokenVerifier, "verify", counted)


def test_a_verified_token_is_served_from_memory_until_its_exp() -> None:
    now = [time.time()]
    verifier = CountingVerifier(clock=lambda: now[0])
    token = TokenIssuer(KEY, "iss", "aud", ttl_seconds=60).issue("5", ["user"])
    assert verifier.verify(token).subject == "5"
    assert verifier.verify(token).roles == frozenset({"user"})
    assert verifier.full == 1
    now[0] += 61  # past the token's exp by the cache's clock: it must be verified again
    verifier.verify(token)  # (PyJWT checks exp by the real clock, where it is still valid)
    assert verifier.full == 2


def test_max_age_bounds_the_cache_below_exp() -> None:
    now = [time.time()]
    verifier = CountingVerifier(clock=lambda: now[0], max_age_seconds=5)
    token = TokenIssuer(KEY, "iss", "aud", ttl_seconds=600).issue("5", [])
    verifier.verify(token)
    now[0] += 4
    verifier.verify(token)
    assert verifier.full == 1
    now[0] += 2  # 6 s after the first check: past max age, verified in full again
    verifier.verify(token)
    assert verifier.full == 2


def test_refusals_are_never_cached_and_the_cache_is_bounded() -> None:
    verifier = CountingVerifier(max_entries=10)
    for _ in range(2):
        with pytest.raises(AuthError):
            verifier.verify("e30.e30.c2ln")  # well-formed, so verified in full, and refused
    with pytest.raises(AuthError):
        verifier.verify("not-a-token")  # malformed: refused before the cache or the verifier
    assert verifier.full == 2 and verifier.cached == 0
    issuer = TokenIssuer(KEY, "iss", "aud")
    tokens = [issuer.issue(str(n), []) for n in range(11)]
    for token in tokens:
        verifier.verify(token)
    assert verifier.cached <= 10
    assert verifier.full == 2 + 11
    verifier.verify(tokens[0])  # the oldest was evicted to make room: verified again
    verifier.verify(tokens[-1])  # the newest is still held
    assert verifier.full == 2 + 11 + 1
    assert verifier.kids == ("k", "k2")


def test_removing_a_key_forgets_what_it_signed() -> None:
    verifier = CountingVerifier()
    token = TokenIssuer(OTHER, "iss", "aud").issue("7", [])
    assert verifier.verify(token).subject == "7"
    assert verifier.cached == 1
    verifier.remove_key(OTHER.kid)
    with pytest.raises(AuthError, match="unknown signing key"):
        verifier.verify(token)
    assert verifier.cached == 0


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        CountingVerifier(max_entries=0)


@pytest.mark.parametrize(
    "spell",
    [
        lambda t: t + "==",
        lambda t: t + "\n",
        lambda t: " " + t,
        lambda t: t + " ",
        lambda t: (
            t[:-1]
            + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(t[-1]) + 1
            ]
        ),
    ],
    ids=["padding", "newline", "leading-space", "trailing-space", "trailing-bits"],
)
def test_a_second_spelling_of_a_cached_token_is_refused_and_never_cached(spell) -> None:  # type: ignore[no-untyped-def]
    verifier = CountingVerifier()
    token = TokenIssuer(KEY, "iss", "aud", ttl_seconds=60).issue("5", ["user"])
    assert verifier.verify(token).subject == "5"
    assert verifier.cached == 1
    variant = spell(token)
    assert variant != token
    for _ in range(2):
        with pytest.raises(AuthError, match="malformed token"):
            verifier.verify(variant)
    assert verifier.cached == 1
    assert verifier.verify(token).subject == "5"  # the canonical one is still served from memory
    assert verifier.full == 1
