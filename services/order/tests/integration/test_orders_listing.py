"""GET /orders: newest first, keyset pages with opaque tokens, filters, visibility."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from order_service.domain.listing import OrderFilter
from shop_common.pagination import sign_token
from shop_testing.page_tokens import forged_page_tokens

from .conftest import ITEMS, RunningApp, Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


async def place(running: RunningApp, token: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await running.http.post(
            "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def all_pages(running: RunningApp, token: str, **params: str) -> list[list[str]]:
    pages: list[list[str]] = []
    query = dict(params)
    while True:
        response = await running.http.get("/orders", params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([o["id"] for o in body["items"]])
        if body["next_page_token"] is None:
            return pages
        query["page_token"] = body["next_page_token"]


async def test_pages_walk_every_order_once_newest_first(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    placed = await place(running, token, 5)
    pages = await all_pages(running, token, page_size="2")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == list(reversed(placed))


async def test_filters_by_status_and_created_range(running: RunningApp, shopper: Shopper) -> None:
    _, token = await shopper()
    placed = await place(running, token, 3)
    await running.http.post(f"/orders/{placed[1]}/cancel", headers=bearer(token))

    assert await all_pages(running, token, status="CANCELLED") == [[placed[1]]]
    assert await all_pages(running, token, status="PENDING") == [[placed[2], placed[0]]]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await all_pages(running, token, created_from=future) == [[]]
    assert await all_pages(running, token, created_from=past, created_to=future) == [
        list(reversed(placed))
    ]


async def test_users_see_only_their_orders_and_admins_see_all(
    running: RunningApp, shopper: Shopper, admin_token: str
) -> None:
    ada, ada_token = await shopper("Ada")
    _, bob_token = await shopper("Bob")
    ada_orders = await place(running, ada_token, 2)
    bob_orders = await place(running, bob_token, 1)

    assert await all_pages(running, bob_token) == [bob_orders]
    everyone = [i for page in await all_pages(running, admin_token) for i in page]
    assert set(everyone) == {*ada_orders, *bob_orders}
    assert await all_pages(running, admin_token, user_id=str(ada.id)) == [
        list(reversed(ada_orders))
    ]
    forbidden = await running.http.get(
        "/orders", params={"user_id": str(ada.id)}, headers=bearer(bob_token)
    )
    assert forbidden.status_code == 403


async def test_bad_page_tokens_and_ranges_are_400_problems(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    await place(running, token, 3)
    first = (
        await running.http.get("/orders", params={"page_size": "1"}, headers=bearer(token))
    ).json()
    good = first["next_page_token"]
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    now = datetime.now(UTC)
    cases = [
        {"page_token": tampered},
        {"page_token": "%%%not-base64"},
        {"page_token": good, "status": "PAID"},  # issued for other filters
        {"created_from": now.isoformat(), "created_to": (now - timedelta(1)).isoformat()},
    ]
    for params in cases:
        response = await running.http.get("/orders", params=params, headers=bearer(token))
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    for params in ({"status": "SHIPPED"}, {"page_size": "0"}, {"created_from": "2026-01-01T00:00"}):
        response = await running.http.get("/orders", params=params, headers=bearer(token))
        assert response.status_code == 422, (params, response.text)


async def test_validly_signed_tokens_of_the_wrong_shape_are_400_never_500(
    running: RunningApp, shopper: Shopper
) -> None:
    """Issue 11: a token whose HMAC is valid but whose body is not a cursor is a 400 problem."""
    user, token = await shopper()
    placed = await place(running, token, 2)
    secret = running.runtime.settings.page_token_secret
    valid = {
        "t": datetime.now(UTC).isoformat(),
        "i": placed[0],
        "f": OrderFilter(user_id=user.id).canonical,
    }
    forged = forged_page_tokens(secret, valid)
    forged["too-long"] = "A" * 5000
    for label, page_token in forged.items():
        response = await running.http.get(
            "/orders", params={"page_token": page_token}, headers=bearer(token)
        )
        assert response.status_code == 400, (label, response.text)
        assert response.headers["content-type"] == "application/problem+json", label
        problem = response.json()
        assert problem["type"].endswith("invalid-page-token"), (label, problem)
        assert problem["detail"].startswith("page_token"), (label, problem)
    # The reference body is a usable cursor: both orders are older than "now".
    reference = sign_token(secret, json.dumps(valid).encode())
    response = await running.http.get(
        "/orders", params={"page_token": reference}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 2
