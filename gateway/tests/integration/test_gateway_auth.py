"""POST /auth/token against a real user service, JWKS verification and key rotation."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import jwt
import pytest
import pytest_asyncio
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_common.clients.user import UserClient
from user_service.server import UserServer, create_server

from .conftest import AUDIENCE, ISSUER, Backend, StartGateway, bearer, user_service_settings

pytestmark = pytest.mark.infra
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def user_server(database_url: str, signing_key: SigningKey) -> AsyncIterator[UserServer]:
    settings = user_service_settings(database_url, signing_key)
    running, _ = await create_server(settings, "127.0.0.1:0")
    yield running
    await running.stop(grace=0.2)


@pytest_asyncio.fixture
async def ada(user_server: UserServer, issuer: TokenIssuer) -> tuple[int, str]:
    """A user in the user service: (id, email)."""
    client = UserClient([f"127.0.0.1:{user_server.port}"])
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    try:
        user = await client.create_user(
            email,
            "Ada",
            PASSWORD,
            roles=["user"],
            token=issuer.issue("1", ["admin"]),
            timeout=30,
        )
    finally:
        await client.close()
    return user.id, email


def _form(username: str, password: str, grant_type: str = "password") -> dict[str, str]:
    return {"grant_type": grant_type, "username": username, "password": password}


async def test_token_is_rs256_with_claims_and_verifies_against_the_jwks(
    start_gateway: StartGateway, user_server: UserServer, ada: tuple[int, str]
) -> None:
    gateway = await start_gateway({"user-service": f"127.0.0.1:{user_server.port}"})
    async with gateway.client() as client:
        issued = await client.post("/auth/token", data=_form(ada[1], PASSWORD))
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert issued.status_code == 200
    body = issued.json()
    assert issued.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    assert claims["sub"] == str(ada[0])
    assert claims["roles"] == ["user"]
    assert claims["exp"] - claims["iat"] == 900


async def test_wrong_password_is_401_invalid_grant(
    start_gateway: StartGateway, user_server: UserServer, ada: tuple[int, str]
) -> None:
    gateway = await start_gateway({"user-service": f"127.0.0.1:{user_server.port}"})
    async with gateway.client() as client:
        wrong = await client.post("/auth/token", data=_form(ada[1], "not the password"))
        unknown = await client.post("/auth/token", data=_form("nobody@example.com", PASSWORD))
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "invalid_grant"
        assert "access_token" not in response.text


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (
            {"grant_type": "client_credentials", "username": "a", "password": "b"},
            400,
            "unsupported_grant_type",
        ),
        ({"grant_type": "password", "username": "a"}, 400, "invalid_request"),
        ({"grant_type": "password", "password": "b"}, 400, "invalid_request"),
        (
            {"grant_type": "password", "username": "a\x00@x.io", "password": "b"},
            400,
            "invalid_request",
        ),
    ],
)
async def test_malformed_grants_are_400(
    start_gateway: StartGateway, form: dict[str, str], status: int, error: str
) -> None:
    gateway = await start_gateway({"user-service": "127.0.0.1:1"})
    async with gateway.client() as client:
        response = await client.post("/auth/token", data=form)
        as_json = await client.post("/auth/token", json=_form("a", "b"))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert as_json.status_code == 415


async def test_user_service_down_is_503_with_retry_after(start_gateway: StartGateway) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{free.getsockname()[1]}"
    gateway = await start_gateway({"user-service": dead}, user_call_timeout_seconds=1.0)
    async with gateway.client() as client:
        response = await client.post("/auth/token", data=_form("a@example.com", PASSWORD))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


async def test_key_rotation_old_tokens_stay_valid_new_ones_use_the_new_key(
    start_gateway: StartGateway,
    backend: Backend,
    user_server: UserServer,
    ada: tuple[int, str],
    signing_key: SigningKey,
    issuer: TokenIssuer,
) -> None:
    old_token = issuer.issue(str(ada[0]), ["user"])
    new_key = generate_signing_key("gw-test-2")
    rotated = await start_gateway(
        {"user-service": f"127.0.0.1:{user_server.port}", "order-service": backend.address},
        jwt_private_key=new_key.private_pem,
        jwt_kid=new_key.kid,
        jwt_public_keys={signing_key.kid: signing_key.public_pem},
    )
    async with rotated.client() as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
        new_token = (await client.post("/auth/token", data=_form(ada[1], PASSWORD))).json()[
            "access_token"
        ]
        with_old = await client.get("/api/orders/1", headers=bearer(old_token))
        with_new = await client.get("/api/orders/1", headers=bearer(new_token))
    assert {k["kid"] for k in jwks["keys"]} == {signing_key.kid, new_key.kid}
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert with_old.status_code == 200
    assert with_new.status_code == 200
    # After the old key is retired, its tokens are refused; the new ones still pass.
    retired = await start_gateway(
        {"order-service": backend.address},
        jwt_private_key=new_key.private_pem,
        jwt_kid=new_key.kid,
        jwt_public_keys={},
    )
    async with retired.client() as client:
        refused = await client.get("/api/orders/1", headers=bearer(old_token))
        accepted = await client.get("/api/orders/1", headers=bearer(new_token))
    assert refused.status_code == 401
    assert "unknown signing key" in refused.headers["www-authenticate"]
    assert accepted.status_code == 200
