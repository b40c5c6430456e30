"""CRUD through the transcoding router against a real user service: JSON in/out, masks, statuses."""

from __future__ import annotations

import pytest
from shop_common.auth import TokenIssuer, generate_signing_key

pytestmark = pytest.mark.infra
PROBLEM = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_get_returns_the_user_as_json(gateway, new_user, admin_token) -> None:
    created = await new_user(name="Grace")
    response = await gateway.http.get(f"/api/users/{created['id']}", headers=bearer(admin_token))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == created
    assert set(created) == {"id", "email", "name", "roles", "created_at", "updated_at"}


async def test_head_answers_like_get_without_a_body(gateway, new_user, admin_token) -> None:
    user = await new_user()
    head = await gateway.http.head(f"/api/users/{user['id']}", headers=bearer(admin_token))
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == "application/json"
    missing = await gateway.http.head("/api/users/987654321", headers=bearer(admin_token))
    assert missing.status_code == 404


async def test_missing_user_is_404_problem_with_the_grpc_status(gateway, admin_token) -> None:
    response = await gateway.http.get("/api/users/987654321", headers=bearer(admin_token))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["grpc_status"] == "NOT_FOUND"
    assert body["instance"] == "/api/users/987654321"


async def test_a_user_reads_itself_but_not_another(gateway, new_user, issuer: TokenIssuer) -> None:
    me, other = await new_user(), await new_user()
    token = issuer.issue(str(me["id"]), ["user"])
    assert (await gateway.http.get(f"/api/users/{me['id']}", headers=bearer(token))).json() == me
    denied = await gateway.http.get(f"/api/users/{other['id']}", headers=bearer(token))
    assert denied.status_code == 403
    assert denied.json()["grpc_status"] == "PERMISSION_DENIED"


async def test_no_token_is_401_with_challenge_and_a_forged_one_is_401_from_the_service(
    gateway, new_user, issuer: TokenIssuer
) -> None:
    user = await new_user()
    missing = await gateway.http.get(f"/api/users/{user['id']}")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="shop"'
    # Same kid, another key: the user service's signature check must refuse it.
    forger = TokenIssuer(generate_signing_key(issuer.key.kid), issuer.issuer, issuer.audience)
    forged = forger.issue(str(user["id"]), ["admin"])
    refused = await gateway.http.get(f"/api/users/{user['id']}", headers=bearer(forged))
    assert refused.status_code == 401
    assert refused.json()["grpc_status"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_create_is_201_with_location_and_a_taken_email_is_409(
    gateway, new_user, admin_token
) -> None:
    body = {"email": "Dup.User@Example.com", "name": "Dup", "password": "long password 1"}
    created = await gateway.http.post("/api/users", json=body, headers=bearer(admin_token))
    assert created.status_code == 201
    user = created.json()
    assert created.headers["location"] == f"/api/users/{user['id']}"
    assert (user["email"].lower(), user["name"], user["roles"]) == (
        "dup.user@example.com",
        "Dup",
        [],
    )
    again = {**body, "email": "dup.user@example.com"}
    conflict = await gateway.http.post("/api/users", json=again, headers=bearer(admin_token))
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == PROBLEM
    assert conflict.json()["grpc_status"] == "ALREADY_EXISTS"


async def test_create_with_an_unknown_field_is_422_and_a_bad_email_is_400(
    gateway, admin_token
) -> None:
    unknown = await gateway.http.post(
        "/api/users",
        json={"email": "a@example.com", "name": "A", "password": "long password 1", "admin": True},
        headers=bearer(admin_token),
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == PROBLEM
    assert ["body", "admin"] in [e["loc"] for e in unknown.json()["errors"]]
    invalid = await gateway.http.post(
        "/api/users",
        json={"email": "not-an-email", "name": "A", "password": "long password 1"},
        headers=bearer(admin_token),
    )
    assert invalid.status_code == 400
    assert invalid.json()["grpc_status"] == "INVALID_ARGUMENT"
    assert invalid.json()["detail"]  # the service's own, client-safe message


async def test_create_with_roles_by_a_non_admin_is_403(gateway, issuer: TokenIssuer) -> None:
    response = await gateway.http.post(
        "/api/users",
        json={"email": "x@example.com", "name": "X", "password": "long pw 1", "roles": ["user"]},
        headers=bearer(issuer.issue("5", ["user"])),
    )
    assert response.status_code == 403


async def test_a_registrar_creates_shopper_accounts_only(gateway, issuer: TokenIssuer) -> None:
    """The storefront's sign-up account (role registrar): a shopper account goes through to the
    user service, any other role is refused here first, naming why."""
    registrar = bearer(issuer.issue("7", ["registrar"]))
    created = await gateway.http.post(
        "/api/users",
        json={"email": "s@example.com", "name": "S", "password": "long pw 1", "roles": ["user"]},
        headers=registrar,
    )
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == ["user"]
    for roles in (["admin"], ["user", "registrar"]):
        refused = await gateway.http.post(
            "/api/users",
            json={"email": "b@example.com", "name": "B", "password": "long pw 1", "roles": roles},
            headers=registrar,
        )
        assert refused.status_code == 403
        assert refused.json()["detail"] == "a registrar creates shopper accounts only (roles: user)"


async def test_patch_changes_exactly_the_keys_in_the_body(
    gateway, new_user, admin_token, issuer: TokenIssuer
) -> None:
    user = await new_user(name="Before")
    url = f"/api/users/{user['id']}"
    renamed = await gateway.http.patch(url, json={"name": "After"}, headers=bearer(admin_token))
    assert renamed.status_code == 200
    after = renamed.json()
    assert (after["name"], after["email"], after["roles"]) == ("After", user["email"], ["user"])
    promoted = await gateway.http.patch(url, json={"roles": []}, headers=bearer(admin_token))
    # An empty list is a value: "roles" is in the mask, so the roles are cleared.
    assert (promoted.json()["roles"], promoted.json()["name"]) == ([], "After")
    token = issuer.issue(str(user["id"]), ["user"])
    new_password = await gateway.http.patch(
        url, json={"password": "a brand new password"}, headers=bearer(token)
    )
    assert new_password.status_code == 200
    assert new_password.json()["name"] == "After"
    assert await gateway.client.authenticate(user["email"], "a brand new password")


async def test_patch_refuses_unknown_null_and_empty_bodies_with_422(
    gateway, new_user, admin_token
) -> None:
    user = await new_user()
    url = f"/api/users/{user['id']}"
    for body in ({"nickname": "x"}, {"name": None}, {}, {"id": 5}):
        response = await gateway.http.patch(url, json=body, headers=bearer(admin_token))
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM
    unchanged = await gateway.http.get(url, headers=bearer(admin_token))
    assert unchanged.json() == user


async def test_patch_roles_by_the_user_itself_is_403(
    gateway, new_user, issuer: TokenIssuer
) -> None:
    user = await new_user()
    token = issuer.issue(str(user["id"]), ["user"])
    response = await gateway.http.patch(
        f"/api/users/{user['id']}", json={"roles": ["admin"]}, headers=bearer(token)
    )
    assert response.status_code == 403


async def test_delete_is_204_then_the_user_is_gone(gateway, new_user, admin_token) -> None:
    user = await new_user()
    url = f"/api/users/{user['id']}"
    deleted = await gateway.http.delete(url, headers=bearer(admin_token))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await gateway.http.get(url, headers=bearer(admin_token))).status_code == 404
    assert (await gateway.http.delete(url, headers=bearer(admin_token))).status_code == 404


@pytest.mark.parametrize(
    "bad_id",
    ["0", "-3", "abc", str(2**63), "1" * 5000, "1.0", "01", "+1", "1e0", "%D9%A1", "%201"],
)
async def test_ids_outside_int64_or_not_in_decimal_digits_are_422(
    gateway, admin_token, bad_id: str
) -> None:
    """One user, one URL: "1.0", "01", "+1" or Arabic-Indic digits are not user 1."""
    response = await gateway.http.get(f"/api/users/{bad_id}", headers=bearer(admin_token))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_control_characters_are_422_not_a_server_error(
    gateway, new_user, admin_token
) -> None:
    """PostgreSQL cannot store NUL: such input must be refused as the client's error."""
    user = await new_user()
    created = await gateway.http.post(
        "/api/users",
        json={"email": "nul@example.com", "name": "A\x00B", "password": "long password 1"},
        headers=bearer(admin_token),
    )
    patched = await gateway.http.patch(
        f"/api/users/{user['id']}", json={"email": "x\x00@example.com"}, headers=bearer(admin_token)
    )
    listed = await gateway.http.get(
        "/api/users", params={"filter": "email:\x00"}, headers=bearer(admin_token)
    )
    assert [r.status_code for r in (created, patched, listed)] == [422, 422, 422]
