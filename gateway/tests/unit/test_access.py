import time

import jwt
import pytest
from gateway.domain.access import ForbiddenError, UnauthorizedError, authorize
from gateway.domain.routes import Route
from shop_common.auth import TokenIssuer, TokenVerifier, generate_signing_key

KEY = generate_signing_key("k1")
OTHER = generate_signing_key("k2")
VERIFIER = TokenVerifier({KEY.kid: KEY.public_pem}, issuer="shop-gateway", audience="shop")
ISSUER = TokenIssuer(KEY, issuer="shop-gateway", audience="shop")
PRIVATE = Route(name="p", path="/p", methods=("GET",), backend="b", auth=True)
ADMIN = Route(name="a", path="/a", methods=("GET",), backend="b", auth=True, roles=("admin",))
PUBLIC = Route(name="o", path="/o", methods=("GET",), backend="b", auth=False)


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "7",
        "roles": ["customer"],
        "iss": "shop-gateway",
        "aud": "shop",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _rs(claims: dict[str, object], kid: str = "k1", key: str = KEY.private_pem) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_valid_token_gives_the_principal() -> None:
    principal = authorize(PRIVATE, f"Bearer {ISSUER.issue('7', ['customer'])}", VERIFIER)
    assert principal is not None
    assert principal.subject == "7"


def _alg_none() -> str:
    return jwt.encode(_claims(), None, algorithm="none", headers={"kid": "k1"})


def _hs_with_public_key_as_secret() -> str:
    # HS/RS confusion: an HMAC token whose "secret" is the published public key.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps(_claims()).encode())
    sig = hmac.new(KEY.public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_alg_none(), id="alg-none"),
        pytest.param(_hs_with_public_key_as_secret(), id="hs-rs-confusion"),
        pytest.param(_rs(_claims(iss="someone-else")), id="wrong-iss"),
        pytest.param(_rs(_claims(aud="other")), id="wrong-aud"),
        pytest.param(_rs(_claims(exp=int(time.time()) - 3600)), id="expired"),
        pytest.param(_rs(_claims(exp=None)), id="missing-exp"),
        pytest.param(_rs(_claims(), kid="unknown"), id="unknown-kid"),
        pytest.param(_rs(_claims(), key=OTHER.private_pem), id="signed-by-another-key"),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
def test_every_bad_token_is_401_with_a_challenge(token: str) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        authorize(PRIVATE, f"Bearer {token}", VERIFIER)
    assert caught.value.www_authenticate.startswith('Bearer realm="shop", error="invalid_token"')


def test_missing_token_is_401_without_error_code() -> None:
    with pytest.raises(UnauthorizedError) as caught:
        authorize(PRIVATE, None, VERIFIER)
    assert caught.value.www_authenticate == 'Bearer realm="shop"'


def test_missing_role_is_403() -> None:
    with pytest.raises(ForbiddenError):
        authorize(ADMIN, f"Bearer {ISSUER.issue('7', ['customer'])}", VERIFIER)
    assert authorize(ADMIN, f"Bearer {ISSUER.issue('1', ['admin'])}", VERIFIER) is not None


def test_public_route_without_token_is_anonymous() -> None:
    assert authorize(PUBLIC, None, VERIFIER) is None
