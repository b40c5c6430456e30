"""OWASP API5:2023 Broken Function Level Authorization and API3:2023 Broken Object Property
Level Authorization (mass assignment, excessive data exposure), through the real gateway.

Bob calls the admin's functions (provider switches, create/delete/list users, the all-users
update stream) and tries to give himself or his order properties he may not set; every
refusal has its exact status and the state is read back unchanged afterwards.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from shop_devstack.client import Item, ShopClient, bearer, check
from shop_testing.rawhttp import assert_problem, raw_request

pytestmark = pytest.mark.infra

PROVIDER = "/api/payments/admin/provider"
JSON = ("Content-Type", "application/json")
SWITCHES = ("latency_ms", "transient_failure_rate", "decline_above", "down")
USER_KEYS = {"id", "email", "name", "roles", "created_at", "updated_at"}
SECRET_MARKERS = ("password", "hash", "argon2", "$argon")


def auth(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


async def provider_switches(client: ShopClient, admin_token: str) -> dict[str, Any]:
    state = check(await client.http.get(PROVIDER, headers=bearer(admin_token)), 200).json()
    return {k: state[k] for k in SWITCHES}


async def user_as_admin(client: ShopClient, admin_token: str, user_id: int) -> dict[str, Any]:
    response = await client.get_user(admin_token, user_id, **{"Cache-Control": "no-cache"})
    user: dict[str, Any] = check(response, 200).json()
    return user


async def users_with_email(client: ShopClient, admin_token: str, email: str) -> list[Any]:
    response = await client.http.get(
        "/api/users", params={"email": email}, headers=bearer(admin_token)
    )
    users: list[Any] = check(response, 200).json()["users"]
    return users


# --- API5: function level ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", b""), ("PUT", b'{"down": true}'), ("PUT", b'{"decline_above": "0.00"}')],
)
async def test_a_user_cannot_use_the_provider_admin_switches(
    gateway_url, actors, client, method, body
) -> None:
    before = await provider_switches(client, actors.admin_token)
    spoofed = [("X-User-Roles", "admin"), ("X-User-ID", "1")]  # identity headers are the gateway's
    answer = await raw_request(
        gateway_url, method, PROVIDER, [*auth(actors.bob_token), JSON, *spoofed], body
    )
    assert_problem(answer, 403)
    anonymous = await raw_request(gateway_url, method, PROVIDER, [JSON, *spoofed], body)
    assert_problem(anonymous, 401)
    assert await provider_switches(client, actors.admin_token) == before


@pytest.mark.parametrize("roles", [None, [], ["user"], ["admin"]])
async def test_a_user_cannot_create_users(gateway_url, actors, client, roles) -> None:
    email = f"minted.{uuid.uuid4().hex[:8]}@shop.example"
    body: dict[str, Any] = {"email": email, "name": "Minted", "password": "pw-minted-123456"}
    if roles is not None:
        body["roles"] = roles
    answer = await raw_request(
        gateway_url,
        "POST",
        "/api/users",
        [*auth(actors.bob_token), JSON],
        json.dumps(body).encode(),
    )
    assert_problem(answer, 403)
    assert await users_with_email(client, actors.admin_token, email) == []


async def test_a_user_cannot_delete_another_user_or_itself(gateway_url, actors, client) -> None:
    before = await user_as_admin(client, actors.admin_token, actors.alice.id)
    for victim in (actors.alice.id, actors.bob.id, 1):
        answer = await raw_request(
            gateway_url, "DELETE", f"/api/users/{victim}", auth(actors.bob_token)
        )
        assert_problem(answer, 403)
    assert await user_as_admin(client, actors.admin_token, actors.alice.id) == before
    assert (await user_as_admin(client, actors.admin_token, actors.bob.id))["id"] == actors.bob.id


@pytest.mark.parametrize(
    ("target", "accept"),
    [
        ("/api/users", "application/json"),
        ("/api/users", "application/x-ndjson"),
        ("/api/users?role=admin", "application/json"),
        ("/api/users?page_size=1000", "application/json"),
        ("/api/users/updates", "text/event-stream"),
    ],
)
async def test_a_user_cannot_list_or_watch_every_user(gateway_url, actors, target, accept) -> None:
    answer = await raw_request(
        gateway_url, "GET", target, [*auth(actors.bob_token), ("Accept", accept)]
    )
    assert_problem(answer, 403)
    assert actors.alice.email.encode() not in answer.body


async def test_a_user_cannot_list_another_users_orders(gateway_url, actors) -> None:
    answer = await raw_request(
        gateway_url, "GET", f"/api/orders?user_id={actors.alice.id}", auth(actors.bob_token)
    )
    assert_problem(answer, 403)


# --- API3: property level ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "status"),
    [
        ({"roles": ["admin"]}, 403),
        ({"roles": ["user", "admin"]}, 403),
        ({"roles": []}, 403),
        ({"name": "Bob Admin", "roles": ["admin"]}, 403),
        ({"is_admin": True}, 422),
        ({"admin": True}, 422),
        ({"role": "admin"}, 422),
        ({"id": 1}, 422),
        ({"password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y"}, 422),
        ({"created_at": "2000-01-01T00:00:00Z"}, 422),
        ({"email_verified": True}, 422),
    ],
)
async def test_a_user_cannot_set_its_own_privileged_properties(
    gateway_url, actors, client, patch, status
) -> None:
    before = await user_as_admin(client, actors.admin_token, actors.bob.id)
    answer = await raw_request(
        gateway_url,
        "PATCH",
        f"/api/users/{actors.bob.id}",
        [*auth(actors.bob_token), JSON],
        json.dumps(patch).encode(),
    )
    assert_problem(answer, status)
    assert await user_as_admin(client, actors.admin_token, actors.bob.id) == before


async def bob_order_count(client: ShopClient, token: str) -> int:
    response = await client.http.get(
        "/api/orders", params={"page_size": 1000}, headers=bearer(token)
    )
    return len(check(response, 200).json()["items"])


@pytest.mark.parametrize(
    "extra",
    [
        {"status": "PAID"},
        {"user_id": "ALICE"},
        {"total": "0.01"},
        {"id": "00000000-0000-4000-8000-000000000001"},
        {"created_at": "2000-01-01T00:00:00Z"},
        {"failure_reason": "none"},
    ],
    ids=["status", "user_id", "total", "id", "created_at", "failure_reason"],
)
async def test_an_order_cannot_be_created_with_server_owned_fields(
    gateway_url, actors, client, extra
) -> None:
    if extra.get("user_id") == "ALICE":
        extra = {"user_id": actors.alice.id}
    before = await bob_order_count(client, actors.bob_token)
    body = {"items": [{"sku": "BOOK-001", "quantity": 1}], "currency": "EUR"}
    headers = [*auth(actors.bob_token), JSON, ("Idempotency-Key", uuid.uuid4().hex)]
    answer = await raw_request(
        gateway_url, "POST", "/api/orders", headers, json.dumps({**body, **extra}).encode()
    )
    problem = assert_problem(answer, 422)
    assert [e["loc"][-1] for e in problem["errors"]] == list(extra)
    assert await bob_order_count(client, actors.bob_token) == before


async def test_an_order_line_cannot_carry_its_own_total(gateway_url, actors, client) -> None:
    before = await bob_order_count(client, actors.bob_token)
    line = {"sku": "BOOK-001", "quantity": 100, "total": "0.00"}
    headers = [*auth(actors.bob_token), JSON, ("Idempotency-Key", uuid.uuid4().hex)]
    body = json.dumps({"items": [line], "currency": "EUR"}).encode()
    assert_problem(await raw_request(gateway_url, "POST", "/api/orders", headers, body), 422)
    assert await bob_order_count(client, actors.bob_token) == before


async def test_the_total_is_the_servers_own_and_the_owner_is_the_caller(actors, client) -> None:
    placed = check(await client.place_order(actors.bob_token, [Item("BOOK-001", 3)]), 201).json()
    assert (placed["user_id"], placed["total"], placed["status"]) == (
        actors.bob.id,
        "125.97",  # 3 × the catalog's 41.99, whatever the client thinks the price is
        "PENDING",
    )


def assert_no_secret(text: str) -> None:
    lowered = text.lower()
    for marker in SECRET_MARKERS:
        assert marker not in lowered, (marker, text[:300])


async def test_no_response_exposes_a_password_or_its_hash(gateway_url, actors, client) -> None:
    email = f"exposed.{uuid.uuid4().hex[:8]}@shop.example"
    created = await client.http.post(
        "/api/users",
        json={"email": email, "name": "Exposed", "password": "pw-exposed-123456"},
        headers=bearer(actors.admin_token),
    )
    assert created.status_code == 201
    assert set(created.json()) == USER_KEYS
    assert_no_secret(created.text)
    own = await raw_request(
        gateway_url, "GET", f"/api/users/{actors.bob.id}", auth(actors.bob_token)
    )
    assert own.status == 200 and set(own.json()) == USER_KEYS
    assert_no_secret(own.body.decode())
    renamed = await raw_request(
        gateway_url,
        "PATCH",
        f"/api/users/{actors.bob.id}",
        [*auth(actors.bob_token), JSON],
        json.dumps({"password": actors.bob.password}).encode(),
    )
    assert renamed.status == 200 and set(renamed.json()) == USER_KEYS
    assert_no_secret(renamed.body.decode())
    listing = await client.http.get(
        "/api/users", params={"page_size": 1000}, headers=bearer(actors.admin_token)
    )
    assert all(set(u) == USER_KEYS for u in listing.json()["users"])
    assert_no_secret(listing.text)
    refused = await raw_request(
        gateway_url,
        "POST",
        "/api/users",
        [*auth(actors.admin_token), JSON],
        json.dumps({"email": "", "name": "x", "password": "pw-never-echoed-42"}).encode(),
    )
    assert_problem(refused, 422)
    assert b"pw-never-echoed-42" not in refused.body  # validation errors never echo input
