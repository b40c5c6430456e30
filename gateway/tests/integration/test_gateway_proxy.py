"""The running gateway in front of a real backend: routing, access, headers, body limit."""

from __future__ import annotations

import time

import jwt
import pytest
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key

from .conftest import AUDIENCE, ISSUER, Backend, StartGateway, bearer

pytestmark = pytest.mark.infra


async def test_matching_route_is_proxied_with_prefix_stripped_and_query_kept(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        response = await client.get(
            "/api/orders/42", params={"b": "2", "a": "1"}, headers=bearer(issuer.issue("7", []))
        )
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "/orders/42"
    assert body["query"] == "b=2&a=1"


async def test_unknown_path_is_404_problem(start_gateway: StartGateway, backend: Backend) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_wrong_method_is_405_with_allow(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        response = await client.put("/api/orders/1", headers=bearer(issuer.issue("7", [])))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "DELETE, GET, HEAD, POST"
    assert backend.seen == []


def _forged(claims: dict[str, object], key: SigningKey, kid: str | None = None) -> str:
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": kid or key.kid})


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "garbage",
        "alg_none",
        "hs256_with_public_key",
        "wrong_iss",
        "wrong_aud",
        "expired",
        "no_exp",
        "unknown_kid",
        "foreign_key",
    ],
)
async def test_every_bad_token_is_401_with_challenge(
    case: str, start_gateway: StartGateway, backend: Backend, signing_key: SigningKey
) -> None:
    now = int(time.time())
    good = {"sub": "7", "roles": [], "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    tokens = {
        "missing": None,
        "garbage": "not.a.token",
        "alg_none": jwt.encode(good, None, algorithm="none", headers={"kid": signing_key.kid}),
        "hs256_with_public_key": jwt.encode(
            good, "k" * 32, algorithm="HS256", headers={"kid": signing_key.kid}
        ),
        "wrong_iss": _forged({**good, "iss": "someone-else"}, signing_key),
        "wrong_aud": _forged({**good, "aud": "other"}, signing_key),
        "expired": _forged({**good, "exp": now - 3600, "iat": now - 7200}, signing_key),
        "no_exp": _forged({k: v for k, v in good.items() if k != "exp"}, signing_key),
        "unknown_kid": _forged(good, signing_key, kid="nobody"),
        "foreign_key": _forged(good, generate_signing_key(signing_key.kid)),
    }
    gateway = await start_gateway({"order-service": backend.address})
    token = tokens[case]
    async with gateway.client() as client:
        response = await client.get("/api/orders/1", headers=bearer(token) if token else {})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="shop"')
    assert ("error=" in challenge) is (case != "missing")
    assert backend.seen == []


async def test_missing_role_is_403(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        refused = await client.get("/api/orders/admin/x", headers=bearer(issuer.issue("7", [])))
        allowed = await client.get(
            "/api/orders/admin/x", headers=bearer(issuer.issue("1", ["admin"]))
        )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "requires role(s): admin"
    assert allowed.status_code == 200


async def test_headers_hop_by_hop_and_spoofed_identity_stripped(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    token = issuer.issue("7", ["user", "auditor"])
    async with gateway.client() as client:
        response = await client.get(
            "/api/orders/1",
            headers={
                **bearer(token),
                "X-User-ID": "1",
                "X-User-Roles": "admin",
                "Connection": "X-Secret-Hop",
                "X-Secret-Hop": "drop me",
                "Keep-Alive": "timeout=5",
                "X-Forwarded-For": "10.0.0.9",
                "X-Forwarded-Prefix": "/spoofed",
                "X-Request-ID": "req-abc.123",
            },
        )
    seen = response.json()["headers"]
    assert seen["x-user-id"] == "7"
    assert seen["x-user-roles"] == "auditor,user"
    assert "x-secret-hop" not in seen
    assert "keep-alive" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"  # the peer; a client's own chain is dropped
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == gateway.url.removeprefix("http://")
    assert seen["x-forwarded-prefix"] == "/api"  # what the route stripped, never the client's
    assert seen["x-request-id"] == "req-abc.123"
    assert seen["authorization"] == f"Bearer {token}"  # the backend verifies the JWT too
    # The backend's hop-by-hop answer headers do not reach the client; the request id does.
    assert "x-back-hop" not in response.headers
    assert response.headers["x-served-by"] == "a"
    assert response.headers["x-request-id"] == "req-abc.123"


async def test_request_id_is_generated_when_absent(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    async with gateway.client() as client:
        response = await client.get("/api/orders/1", headers=bearer(issuer.issue("7", [])))
    generated = response.headers["x-request-id"]
    assert len(generated) == 32
    assert response.json()["headers"]["x-request-id"] == generated


async def test_oversized_body_is_413_and_never_reaches_the_backend(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address}, max_body_bytes=1024)
    async with gateway.client() as client:
        small = await client.post(
            "/api/orders", content=b"x" * 1024, headers=bearer(issuer.issue("7", []))
        )
        large = await client.post(
            "/api/orders", content=b"x" * 1025, headers=bearer(issuer.issue("7", []))
        )

        async def chunks() -> object:
            for _ in range(3):
                yield b"y" * 600

        streamed = await client.post(
            "/api/orders", content=chunks(), headers=bearer(issuer.issue("7", []))
        )
    assert small.status_code == 200
    assert small.json()["body_bytes"] == 1024
    assert large.status_code == 413
    assert large.headers["content-type"] == "application/problem+json"
    assert streamed.status_code == 413
    assert backend.hits("POST", "/orders") == 1
