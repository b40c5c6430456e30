"""OWASP API1:2023 Broken Object Level Authorization, through the real gateway.

Bob (an ordinary user) goes after Alice's objects: her order, her payments, her user record,
by their real ids, by guessed and sequential ids, and by malformed ones. Every refusal has its
exact status (another user's order or payment is a 404 exactly like a missing one, so ids
cannot be probed; another user's record is a 403 exactly like a missing one's), and every
object is read back afterwards to show that nothing changed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from shop_devstack.client import TERMINAL_ORDER_STATES, Item, ShopClient, bearer, check
from shop_testing.rawhttp import assert_problem, raw_request
from shop_testing.wait import eventually

pytestmark = pytest.mark.infra

INT64_MAX = 2**63 - 1


def auth(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


async def settled_order(client: ShopClient, token: str) -> dict[str, Any]:
    """A new order of the token's user, waited until its saga is over (it no longer changes)."""
    placed = check(await client.place_order(token, [Item("BOOK-001", 1)]), 201)
    order_id = placed.json()["id"]
    final: dict[str, Any] = {}

    async def settled() -> bool:
        final.update(await client.get_order(token, order_id))
        return final["status"] in TERMINAL_ORDER_STATES

    await eventually(settled, timeout=30, interval=0.1, what=f"order {order_id} settled")
    return final


async def test_bob_cannot_read_alices_order(gateway_url, actors, client) -> None:
    order = await settled_order(client, actors.alice_token)
    answer = await raw_request(
        gateway_url, "GET", f"/api/orders/{order['id']}", auth(actors.bob_token)
    )
    stolen = assert_problem(answer, 404)
    missing = assert_problem(
        await raw_request(
            gateway_url, "GET", f"/api/orders/{uuid.uuid4()}", auth(actors.bob_token)
        ),
        404,
    )
    assert stolen["detail"] == missing["detail"]  # indistinguishable from a missing order
    assert b'"user_id"' not in answer.body and b'"total"' not in answer.body
    assert await client.get_order(actors.alice_token, order["id"]) == order


async def test_bob_cannot_cancel_alices_order(gateway_url, actors, client) -> None:
    order = await settled_order(client, actors.alice_token)
    target = f"/api/orders/{order['id']}"
    assert_problem(
        await raw_request(gateway_url, "POST", f"{target}/cancel", auth(actors.bob_token)), 404
    )
    # DELETE is not how an order is cancelled: the order service has no such function.
    refused = await raw_request(gateway_url, "DELETE", target, auth(actors.bob_token))
    assert_problem(refused, 405)
    assert await client.get_order(actors.alice_token, order["id"]) == order


async def test_bob_cannot_read_alices_payments(gateway_url, actors, client) -> None:
    order = await settled_order(client, actors.alice_token)
    payments: list[dict[str, Any]] = []

    async def charged() -> bool:
        payments[:] = await client.payments_for(actors.alice_token, order["id"])
        return bool(payments)

    await eventually(charged, timeout=30, interval=0.1, what="alice's payment recorded")
    payment_id = payments[0]["id"]
    answer = await raw_request(
        gateway_url, "GET", f"/api/payments/{payment_id}", auth(actors.bob_token)
    )
    assert_problem(answer, 404)
    assert b'"amount"' not in answer.body and b'"provider_ref"' not in answer.body
    listing = await raw_request(
        gateway_url, "GET", f"/api/payments?order_id={order['id']}", auth(actors.bob_token)
    )
    assert listing.status == 200
    assert listing.json() == {"items": []}  # the order's payments are not disclosed
    assert await client.payments_for(actors.alice_token, order["id"]) == payments


async def test_bob_cannot_list_alices_orders(gateway_url, actors, client) -> None:
    order = await settled_order(client, actors.alice_token)
    answer = await raw_request(
        gateway_url, "GET", f"/api/orders?user_id={actors.alice.id}", auth(actors.bob_token)
    )
    assert_problem(answer, 403)
    own = await raw_request(
        gateway_url, "GET", "/api/orders?page_size=1000", auth(actors.bob_token)
    )
    assert own.status == 200
    assert all(o["user_id"] == actors.bob.id for o in own.json()["items"])
    assert order["id"] not in own.body.decode()


async def alice_as_admin_sees_her(
    client: ShopClient, admin_token: str, user_id: int
) -> dict[str, Any]:
    response = check(
        await client.get_user(admin_token, user_id, **{"Cache-Control": "no-cache"}), 200
    )
    user: dict[str, Any] = response.json()
    return user


async def test_bob_cannot_read_change_or_delete_alices_user_record(
    gateway_url, actors, client
) -> None:
    before = await alice_as_admin_sees_her(client, actors.admin_token, actors.alice.id)
    target = f"/api/users/{actors.alice.id}"
    bob = auth(actors.bob_token)
    json_body = [("Content-Type", "application/json")]
    read = await raw_request(gateway_url, "GET", target, bob)
    assert_problem(read, 403)
    assert actors.alice.email not in read.body.decode()
    for patch in (
        {"name": "Pwned"},
        {"email": "bob-owns-this@shop.example"},
        {"password": "pw-bob-knows-it"},
    ):
        answer = await raw_request(
            gateway_url, "PATCH", target, bob + json_body, json.dumps(patch).encode()
        )
        assert_problem(answer, 403)
    assert_problem(await raw_request(gateway_url, "DELETE", target, bob), 403)
    assert await alice_as_admin_sees_her(client, actors.admin_token, actors.alice.id) == before
    # Alice's password still works (the refused PATCH did not change it).
    assert await client.token(actors.alice.email, actors.alice.password)


async def test_a_cached_copy_of_alices_record_is_never_served_to_bob(
    gateway_url, actors, client
) -> None:
    target = f"/api/users/{actors.alice.id}"
    for _ in range(2):  # the second read is served from the gateway's response cache
        mine = await raw_request(gateway_url, "GET", target, auth(actors.alice_token))
        assert mine.status == 200
    assert mine.header("x-cache") == "HIT"
    answer = await raw_request(gateway_url, "GET", target, auth(actors.bob_token))
    assert_problem(answer, 403)
    assert actors.alice.email not in answer.body.decode()


@pytest.mark.parametrize("offset", [-2, -1, 1, 2, 1_000_000])
async def test_sequential_user_ids_answer_like_a_missing_user(
    gateway_url, actors, client, offset
) -> None:
    """Ids next to Bob's (whether taken or not) all answer 403: no enumeration of accounts."""
    guessed = actors.bob.id + offset
    if guessed < 1:
        guessed = actors.bob.id + 1_000_001
    target = f"/api/users/{guessed}"
    answer = await raw_request(gateway_url, "GET", target, auth(actors.bob_token))
    body = assert_problem(answer, 403)
    assert body["detail"] == "a user may only read or change itself"
    assert b"@" not in answer.body


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/api/users/abc", 422),
        ("/api/users/0", 422),
        ("/api/users/-1", 422),
        ("/api/users/1e3", 422),
        ("/api/users/1.0", 422),
        (f"/api/users/{INT64_MAX + 1}", 422),
        ("/api/users/%00", 400),  # no canonical path (an encoded control byte)
        ("/api/orders/1", 422),
        ("/api/orders/not-a-uuid", 422),
        ("/api/orders/%27%20OR%201=1--", 422),
        ("/api/payments/1", 422),
        ("/api/payments?order_id=1", 422),
        ("/api/payments?order_id=%27%20OR%20%271%27=%271", 422),
    ],
)
async def test_malformed_ids_are_refused_without_leaking(
    gateway_url, actors, target, status
) -> None:
    answer = await raw_request(gateway_url, "GET", target, auth(actors.bob_token))
    assert_problem(answer, status)


async def test_random_order_and_payment_ids_are_404(gateway_url, actors) -> None:
    for target in (f"/api/orders/{uuid.uuid4()}", f"/api/payments/{uuid.uuid4()}"):
        assert_problem(await raw_request(gateway_url, "GET", target, auth(actors.bob_token)), 404)
    answer = await raw_request(
        gateway_url, "GET", f"/api/payments?order_id={uuid.uuid4()}", auth(actors.bob_token)
    )
    assert (answer.status, answer.json()) == (200, {"items": []})


async def test_the_admin_reads_alices_order_so_the_404_is_authorization(
    gateway_url, actors, client
) -> None:
    """Control: the same id Bob got 404 for exists and is readable by its owner and an admin."""
    order = await settled_order(client, actors.alice_token)
    answer = await client.http.get(f"/api/orders/{order['id']}", headers=bearer(actors.admin_token))
    assert answer.status_code == 200
    assert answer.json()["user_id"] == actors.alice.id
