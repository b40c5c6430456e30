"""OWASP API2:2023 Broken Authentication, through the real gateway.

Forged and mangled bearer tokens against a proxied route (/api/orders), a transcoded one
(/api/users/{id}) and an admin one (/api/payments/admin/provider): each is a 401 problem with
an RFC 6750 challenge, and a write attempted with it changes nothing. Tokens signed with the
system's real key but with a bad claim (expired, not yet valid, wrong issuer or audience, no
subject) prove that the claims are checked, not only the signature. Login throttling and
non-canonical base64 are in test_authentication.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from shop_devstack.devkeys import KEY_FILE
from shop_devstack.running import RunningSystem
from shop_testing.rawhttp import RawResponse, assert_problem, raw_request

pytestmark = pytest.mark.infra

ISSUER, AUDIENCE = "shop-gateway", "shop"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


class Forger:
    """Makes tokens for an attacker who knows the public key and, for claim tests, the real one."""

    def __init__(self, run_dir: Path, subject: int) -> None:
        path = run_dir / KEY_FILE
        if not path.exists():
            pytest.fail(f"no signing key at {path}: the claim tests need the system's dev key")
        key = json.loads(path.read_text())
        self.kid: str = key["kid"]
        self.private_pem: str = key["private_pem"]
        self.public_pem: str = key["public_pem"]
        self.subject = subject

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(self.subject),
            "roles": ["user", "admin"],  # every forgery also tries to be an admin
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def real(self, **changes: Any) -> str:
        """Signed with the system's own key: only the changed claims are wrong."""
        return jwt.encode(
            self.claims(**changes), self.private_pem, algorithm="RS256", headers={"kid": self.kid}
        )

    def hs256_with_public_key(self) -> str:
        """Algorithm confusion: HMAC-SHA256 keyed with the RSA public key's PEM."""
        head = b64json({"alg": "HS256", "typ": "JWT", "kid": self.kid})
        body = b64json(self.claims())
        mac = hmac.new(self.public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256)
        return f"{head}.{body}.{b64(mac.digest())}"

    def alg_none(self) -> str:
        return (
            f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': self.kid})}.{b64json(self.claims())}."
        )

    def own_key(self, kid: str | None = None) -> str:
        """Signed with the attacker's own RSA key, under the real kid or an unknown one."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return jwt.encode(self.claims(), pem, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture
def forger(system: RunningSystem, actors) -> Forger:
    assert system.run_dir is not None
    return Forger(system.run_dir, actors.bob.id)


FORGERIES = {
    "alg_none": lambda f: f.alg_none(),
    "hs256_signed_with_the_public_key": lambda f: f.hs256_with_public_key(),
    "unknown_kid": lambda f: f.own_key(kid="attacker-key-1"),
    "real_kid_attackers_key": lambda f: f.own_key(),
    "expired": lambda f: f.real(
        iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600
    ),
    "not_yet_valid": lambda f: f.real(nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200),
    "wrong_issuer": lambda f: f.real(iss="https://evil.example"),
    "wrong_audience": lambda f: f.real(aud="another-api"),
    "no_subject": lambda f: f.real(sub=None),
    "no_expiry": lambda f: f.real(exp=None),
    "garbage": lambda f: "not.a.jwt",
    "signature_stripped": lambda f: f.real().rsplit(".", 1)[0] + ".",
    "oversized_garbage": lambda f: "A" * 7000,
}
TARGETS = ["/api/orders", "/api/users/{bob}", "/api/payments/admin/provider"]


def assert_refused(answer: RawResponse, *, token_sent: bool) -> None:
    assert_problem(answer, 401)
    challenge = answer.header("www-authenticate") or ""
    assert challenge.startswith('Bearer realm="shop"'), challenge
    assert ('error="invalid_token"' in challenge) is token_sent, challenge


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_a_forged_token_is_401_with_a_challenge(
    gateway_url, actors, forger, forgery, target
) -> None:
    token = FORGERIES[forgery](forger)
    path = target.format(bob=actors.bob.id)
    answer = await raw_request(gateway_url, "GET", path, [("Authorization", f"Bearer {token}")])
    assert_refused(answer, token_sent=True)
    assert token[:40] not in answer.body.decode()  # the token is never echoed


async def test_writes_with_a_forged_admin_token_change_nothing(
    gateway_url, actors, forger, client
) -> None:
    """Each forgery claims admin: it must neither rename Alice nor flip the provider switches."""
    before_user = (
        await client.get_user(actors.admin_token, actors.alice.id, **{"Cache-Control": "no-cache"})
    ).json()
    provider = await client.http.get(
        "/api/payments/admin/provider", headers={"Authorization": f"Bearer {actors.admin_token}"}
    )
    assert provider.status_code == 200
    for forgery in sorted(FORGERIES):
        token = FORGERIES[forgery](forger)
        headers = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")]
        renamed = await raw_request(
            gateway_url, "PATCH", f"/api/users/{actors.alice.id}", headers, b'{"name": "Forged"}'
        )
        assert_refused(renamed, token_sent=True)
        down = await raw_request(
            gateway_url, "PUT", "/api/payments/admin/provider", headers, b'{"down": true}'
        )
        assert_refused(down, token_sent=True)
    after_user = (
        await client.get_user(actors.admin_token, actors.alice.id, **{"Cache-Control": "no-cache"})
    ).json()
    assert after_user == before_user
    after = await client.http.get(
        "/api/payments/admin/provider", headers={"Authorization": f"Bearer {actors.admin_token}"}
    )
    assert after.json()["down"] is provider.json()["down"] is False


async def test_a_token_signed_with_the_real_key_and_good_claims_is_accepted(
    gateway_url, actors, forger
) -> None:
    """Control for the claim forgeries: the only difference there was the one bad claim."""
    token = forger.real(roles=["user"])
    answer = await raw_request(
        gateway_url, "GET", f"/api/users/{actors.bob.id}", [("Authorization", f"Bearer {token}")]
    )
    assert answer.status == 200
    assert answer.json()["id"] == actors.bob.id


@pytest.mark.parametrize("target", TARGETS)
async def test_a_token_in_the_query_string_is_not_a_credential(gateway_url, actors, target) -> None:
    path = target.format(bob=actors.bob.id)
    for name in ("access_token", "token", "jwt", "authorization"):
        answer = await raw_request(gateway_url, "GET", f"{path}?{name}={actors.admin_token}")
        assert_refused(answer, token_sent=False)
        assert actors.admin_token not in answer.body.decode()


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"admin@shop.example:admin-password-dev").decode(),
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "",
        "Token {token}",
        "Digest username=admin",
        "{token}",  # no scheme at all
    ],
    ids=[
        "basic",
        "bearer_no_token",
        "bearer_space",
        "bearer_spaces",
        "empty",
        "token_scheme",
        "digest",
        "bare_token",
    ],
)
async def test_other_schemes_and_empty_bearers_are_401(gateway_url, actors, authorization) -> None:
    value = authorization.format(token=actors.admin_token)
    answer = await raw_request(
        gateway_url, "GET", "/api/payments/admin/provider", [("Authorization", value)]
    )
    assert_refused(answer, token_sent=False)


async def test_a_token_in_a_cookie_or_another_header_is_not_a_credential(
    gateway_url, actors
) -> None:
    for header in ("Cookie", "X-Access-Token", "X-Auth-Token", "Proxy-Authorization"):
        value = (
            f"access_token={actors.admin_token}"
            if header == "Cookie"
            else f"Bearer {actors.admin_token}"
        )
        answer = await raw_request(
            gateway_url, "GET", "/api/payments/admin/provider", [(header, value)]
        )
        assert_refused(answer, token_sent=False)


async def test_a_huge_token_is_refused_before_it_is_parsed(gateway_url) -> None:
    """64 KiB of Authorization: the gateway's bound on header fields answers 431."""
    answer = await raw_request(
        gateway_url, "GET", "/api/orders", [("Authorization", "Bearer " + "A" * 65_536)]
    )
    assert_problem(answer, 431)
