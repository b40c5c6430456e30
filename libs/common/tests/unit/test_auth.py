"""JWT verification refuses every forged, expired or misdirected token."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from shop_common.auth import (
    AuthError,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
    jwks,
    parse_bearer,
)

KEY = generate_signing_key("k1")
OTHER = generate_signing_key("k2")


def verifier(**keys: str) -> TokenVerifier:
    return TokenVerifier(keys or {"k1": KEY.public_pem}, issuer="iss", audience="aud")


def issuer(key=KEY, **kw) -> TokenIssuer:  # type: ignore[no-untyped-def]
    return TokenIssuer(
        key,
        issuer=kw.get("iss", "iss"),
        audience=kw.get("aud", "aud"),
        ttl_seconds=kw.get("ttl", 60),
    )


def test_valid_token_yields_subject_and_roles() -> None:
    principal = verifier().verify(issuer().issue("42", ["user", "admin"]))
    assert principal.user_id == 42
    assert principal.is_admin


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: issuer(ttl=-60).issue("1", []), "token expired"),
        (lambda: issuer(aud="other").issue("1", []), "token not meant for this audience"),
        (lambda: issuer(iss="evil").issue("1", []), "token from an untrusted issuer"),
        (lambda: issuer(OTHER).issue("1", []), "unknown signing key"),
        (lambda: "not-a-jwt", "malformed token"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token_factory, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthError) as err:
        verifier().verify(token_factory())
    assert err.value.reason == reason


def _unsigned(claims: dict[str, object], header: dict[str, object]) -> str:
    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(claims)}."


def test_alg_none_is_refused() -> None:
    now = int(time.time())
    token = _unsigned(
        {"sub": "1", "iss": "iss", "aud": "aud", "exp": now + 60, "iat": now},
        {"alg": "none", "kid": "k1"},
    )
    # The classic form has an empty signature: not even a compact JWS of three segments.
    with pytest.raises(AuthError, match="malformed token"):
        verifier().verify(token)
    # With some signature bytes it is well-formed, and refused for its algorithm.
    with pytest.raises(AuthError, match="algorithm"):
        verifier().verify(token + "c2lnbmF0dXJl")


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    now = int(time.time())
    claims = {
        "sub": "1",
        "iss": "iss",
        "aud": "aud",
        "exp": now + 60,
        "iat": now,
        "roles": ["admin"],
    }
    # The classic confusion attack: HMAC keyed with the public PEM the attacker can download.
    import hashlib
    import hmac

    unsigned = _unsigned(claims, {"alg": "HS256", "kid": "k1", "typ": "JWT"})[:-1]
    mac = hmac.new(KEY.public_pem.encode(), unsigned.encode(), hashlib.sha256).digest()
    token = unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(AuthError, match="algorithm"):
        verifier().verify(token)


def test_missing_exp_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode(
        {"sub": "1", "iss": "iss", "aud": "aud", "iat": now},
        KEY.private_pem,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(AuthError, match="exp"):
        verifier().verify(token)


def test_rotation_keeps_old_tokens_valid_and_accepts_new_ones() -> None:
    v = verifier()
    old_token = issuer(KEY).issue("1", [])
    v.add_key("k2", OTHER.public_pem)
    new_token = issuer(OTHER).issue("2", [])
    assert v.verify(old_token).subject == "1"
    assert v.verify(new_token).subject == "2"
    v.remove_key("k1")
    with pytest.raises(AuthError, match="unknown signing key"):
        v.verify(old_token)


def test_jwks_publishes_each_key_with_its_kid() -> None:
    doc = jwks({"k1": KEY.public_pem, "k2": OTHER.public_pem})
    assert [k["kid"] for k in doc["keys"]] == ["k1", "k2"]
    assert all(k["alg"] == "RS256" and k["kty"] == "RSA" for k in doc["keys"])


@pytest.mark.parametrize("value", [None, "", "Basic abc", "Bearer ", "Bearer"])
def test_parse_bearer_refuses_anything_but_a_bearer_token(value: str | None) -> None:
    with pytest.raises(AuthError):
        parse_bearer(value)


def _with_last_char_bits_set(segment: str) -> str:
    """The same decoded bytes, spelled with non-zero unused trailing bits (a 2nd spelling)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in (2, 3), "needs a segment with unused bits"
    index = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[index + 1]


def _non_canonical_variants(token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    # RS256 with a 2048-bit key: 256 signature bytes = 342 base64url characters (2 mod 4), so
    # the last character carries 4 unused bits. The payload's length varies; pad it to 2 mod 4.
    return {
        "padded-signature": f"{token}==",
        "padded-signature-one": f"{token}=",
        "padded-header": f"{header}==.{payload}.{signature}",
        "trailing-space": f"{token} ",
        "leading-space": f" {token}",
        "trailing-newline": f"{token}\n",
        "inner-newline": f"{header}.\n{payload}.{signature}",
        "tab": f"{token}\t",
        "two-segments": f"{header}.{payload}",
        "four-segments": f"{token}.{signature}",
        "empty-signature": f"{header}.{payload}.",
        "plus-char": f"{header}.{payload}.{signature[:-2]}+{signature[-1]}",
        "slash-char": f"{header}.{payload}.{signature[:-2]}/{signature[-1]}",
        "standard-alphabet": token.replace("-", "+").replace("_", "/")
        if "-" in token or "_" in token
        else f"{header}.{payload}.+{signature[1:]}",
        "trailing-bits": f"{header}.{payload}.{_with_last_char_bits_set(signature)}",
        "length-1-mod-4": f"{header}.{payload}.{signature}AAA",
        "nul": f"{token}\x00",
        "non-ascii": f"{token[:-1]}é",
        "oversized": f"{header}.{payload}.{'A' * 10_000}",
    }


# Made at import, used whenever the test runs: a day of validity, so that a slow collection or a
# loaded machine cannot let it expire before the tests that need it valid (60 s once did, in CI).
TOKEN = issuer(ttl=86_400).issue("42", ["user"])


def test_the_issued_token_is_canonical_and_its_signature_has_unused_bits() -> None:
    from shop_common.auth import is_canonical_compact_jws

    assert is_canonical_compact_jws(TOKEN)
    assert len(TOKEN.split(".")[2]) % 4 == 2


@pytest.mark.parametrize("variant", sorted(_non_canonical_variants(TOKEN)))
def test_non_canonical_token_strings_are_refused_as_malformed(variant: str) -> None:
    token = _non_canonical_variants(TOKEN)[variant]
    assert token != TOKEN
    with pytest.raises(AuthError, match=r"^malformed token$"):
        verifier().verify(token)


def test_pyjwt_alone_accepts_the_padded_twin_that_the_verifier_refuses() -> None:
    """The reported attack: PyJWT strips '=' before decoding, so `token==` verified too."""
    twin = f"{TOKEN}=="
    claims = jwt.decode(twin, KEY.public_pem, algorithms=["RS256"], audience="aud", issuer="iss")
    assert claims["sub"] == "42"
    with pytest.raises(AuthError, match=r"^malformed token$"):
        verifier().verify(twin)
    assert verifier().verify(TOKEN).subject == "42"


def test_trailing_bits_twin_decodes_to_the_same_signature_bytes() -> None:
    signature = TOKEN.split(".")[2]
    twin = _with_last_char_bits_set(signature)

    def decoded(segment: str) -> bytes:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))

    assert twin != signature
    assert decoded(twin) == decoded(signature)


@pytest.mark.parametrize("length", range(2, 12))
def test_canonical_check_agrees_with_re_encoding(length: int) -> None:
    """For every last character, accepted exactly when decode + re-encode gives the text back."""
    from shop_common.auth import is_canonical_compact_jws

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for last in alphabet:
        segment = "Q" * (length - 1) + last
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
            canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == segment
        except ValueError:
            canonical = False
        assert is_canonical_compact_jws(f"e30.{segment}.{segment}") is canonical, segment


@pytest.mark.parametrize("value", ["Bearer  tok", "bearer tok"])
def test_parse_bearer_takes_the_token_after_the_separating_spaces(value: str) -> None:
    assert parse_bearer(value) == "tok"


@pytest.mark.parametrize("value", ["Bearer tok\t", "Bearer tok\n", "Bearer tok "])
def test_parse_bearer_leaves_other_whitespace_for_the_verifier_to_refuse(value: str) -> None:
    token = parse_bearer(value)
    assert token != token.strip()
    with pytest.raises(AuthError, match="malformed token"):
        verifier().verify(token)
