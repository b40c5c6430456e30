"""bearer_principal and require_role: 401 with an RFC 6750 challenge, 403 on a missing role."""

from __future__ import annotations

import httpx
from shop_common.auth import TokenIssuer, generate_signing_key
from shop_common.web import PROBLEM_MEDIA_TYPE


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_yields_the_principal(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    response = await client.get("/me", headers=bearer(issuer.issue("7", ["customer", "staff"])))
    assert response.status_code == 200
    assert response.json() == {"subject": "7", "roles": ["customer", "staff"]}


async def test_missing_token_is_401_with_a_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == 'Bearer realm="shop"'
    assert response.json()["detail"] == "missing bearer token"


async def test_non_bearer_scheme_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert response.status_code == 401


async def test_invalid_tokens_are_401_with_invalid_token_challenge(
    client: httpx.AsyncClient,
) -> None:
    foreign = TokenIssuer(generate_signing_key("k1"), "test-issuer", "test-aud").issue(
        "1", ["admin"]
    )
    other_audience = TokenIssuer(generate_signing_key("k1"), "test-issuer", "elsewhere")
    for token in ("not-a-jwt", foreign, other_audience.issue("1", [])):
        response = await client.get("/me", headers=bearer(token))
        assert response.status_code == 401, token
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="shop", error="invalid_token"')
        assert response.json()["detail"]


async def test_expired_token_is_401_naming_expiry(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("7", [], exp=1_000_000, iat=999_000, nbf=999_000)
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


async def test_role_required_with_auth_dependency(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    assert (await client.get("/admin")).status_code == 401
    customer = await client.get("/admin", headers=bearer(issuer.issue("7", ["customer"])))
    assert customer.status_code == 403
    assert customer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert customer.json()["detail"] == "requires the admin role"
    admin = await client.get("/admin", headers=bearer(issuer.issue("1", ["admin"])))
    assert (admin.status_code, admin.json()) == (200, "1")


async def test_role_required_from_router_level_authentication(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    assert (await client.get("/staff")).status_code == 401
    assert (
        await client.get("/staff", headers=bearer(issuer.issue("7", ["customer"])))
    ).status_code == 403
    ok = await client.get("/staff", headers=bearer(issuer.issue("8", ["staff"])))
    assert (ok.status_code, ok.json()) == (200, "8")


async def test_role_check_without_any_authentication_is_401_not_500(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    response = await client.get("/unauthenticated-role", headers=bearer(issuer.issue("1", ["x"])))
    assert response.status_code == 401


def test_openapi_declares_the_bearer_scheme(harness) -> None:  # type: ignore[no-untyped-def]
    schemes = harness.app.openapi()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "RS256 JWT issued by the gateway",
    }
