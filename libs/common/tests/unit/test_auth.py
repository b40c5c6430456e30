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
    with pytest.raises(AuthError, match="algorithm"):
        verifier().verify(token)


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
