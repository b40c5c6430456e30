"""POST/GET/cancel over HTTP: idempotency, ownership (404), illegal transitions (409), problems."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from .conftest import ITEMS, RunningApp, Shopper, bearer

# Generous: set-up makes two databases, a vhost and a user server on a shared 2-core box.
pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


async def test_create_then_get_and_replay_with_the_same_idempotency_key(
    running: RunningApp, shopper: Shopper
) -> None:
    user, token = await shopper()
    body = {
        "items": [*ITEMS, {"sku": "BOOK-002", "quantity": 1}],
        "currency": "EUR",
    }
    key = uuid.uuid4().hex

    created = await running.http.post(
        "/orders", json=body, headers=bearer(token, **{"Idempotency-Key": key})
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "PENDING"
    # Priced by the shop: 2 × 41.99 + 1 × 78.99 (the seed catalog's prices).
    assert order["total"] == "162.97"
    assert [line["unit_price"] for line in order["items"]] == ["41.99", "78.99"]
    assert order["user_id"] == user.id
    assert created.headers["location"] == f"/orders/{order['id']}"
    assert "idempotent-replayed" not in created.headers

    again = await running.http.post(
        "/orders", json=body, headers=bearer(token, **{"Idempotency-Key": key})
    )
    assert again.status_code == 201
    assert again.json() == order
    assert again.headers["idempotent-replayed"] == "true"

    fetched = await running.http.get(f"/orders/{order['id']}", headers=bearer(token))
    assert fetched.status_code == 200
    assert fetched.json() == order
    assert "no-cache" in fetched.headers["cache-control"]

    other_body = {"items": ITEMS, "currency": "EUR"}
    conflict = await running.http.post(
        "/orders", json=other_body, headers=bearer(token, **{"Idempotency-Key": key})
    )
    assert conflict.status_code == 422
    assert conflict.headers["content-type"].startswith("application/problem+json")
    assert conflict.json()["type"].endswith("idempotency-key-reused")


async def test_concurrent_requests_with_one_key_make_one_order(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    headers = bearer(token, **{"Idempotency-Key": uuid.uuid4().hex})
    body = {"items": ITEMS, "currency": "EUR"}
    responses = await asyncio.gather(
        *(running.http.post("/orders", json=body, headers=headers) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.json()["id"] for r in responses}) == 1


async def test_another_users_order_is_404_and_an_admin_sees_it(
    running: RunningApp, shopper: Shopper, admin_token: str
) -> None:
    _, owner = await shopper("Owner")
    _, stranger = await shopper("Stranger")
    order = (
        await running.http.post(
            "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(owner)
        )
    ).json()

    for response in (
        await running.http.get(f"/orders/{order['id']}", headers=bearer(stranger)),
        await running.http.post(f"/orders/{order['id']}/cancel", headers=bearer(stranger)),
        await running.http.get(f"/orders/{uuid.uuid4()}", headers=bearer(owner)),
    ):
        assert response.status_code == 404
        assert response.json()["type"].endswith("order-not-found")
    seen = await running.http.get(f"/orders/{order['id']}", headers=bearer(admin_token))
    assert seen.status_code == 200
    assert seen.json()["id"] == order["id"]


async def test_cancel_pending_then_cancel_again_is_409(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    order = (
        await running.http.post(
            "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
        )
    ).json()
    cancelled = await running.http.post(f"/orders/{order['id']}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    again = await running.http.post(f"/orders/{order['id']}/cancel", headers=bearer(token))
    assert again.status_code == 409
    problem = again.json()
    assert problem["current_status"] == "CANCELLED"
    assert again.headers["content-type"].startswith("application/problem+json")


BAD_BODIES = [
    # A client-sent price (the shop prices every line, so refused), quantity 0, no lines,
    # a lower-case currency, and a client-sent total (computed by the server, so refused).
    (
        {"items": [{"sku": "BOOK-001", "quantity": 1, "unit_price": "10.25"}], "currency": "EUR"},
        "unit_price",
    ),
    ({"items": [{"sku": "BOOK-001", "quantity": 0}], "currency": "EUR"}, "quantity"),
    ({"items": [], "currency": "EUR"}, "items"),
    ({"items": ITEMS, "currency": "eur"}, "currency"),
    ({"items": ITEMS, "currency": "EUR", "total": "1.00"}, "total"),
]


async def test_bad_bodies_are_422_problems_naming_the_field(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    for body, field in BAD_BODIES:
        response = await running.http.post("/orders", json=body, headers=bearer(token))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert any(field in error["loc"] for error in response.json()["errors"]), field


async def test_domain_rejections_and_transport_errors_are_4xx_problems(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    cases = [
        # A currency outside the accepted ISO 4217 list, and one the shop does not price in.
        (
            await running.http.post(
                "/orders", json={"items": ITEMS, "currency": "XXX"}, headers=bearer(token)
            ),
            422,
        ),
        (
            await running.http.post(
                "/orders",
                json={
                    "items": [{"sku": "BOOK-001", "quantity": 1}],
                    "currency": "JPY",
                },
                headers=bearer(token),
            ),
            422,
        ),
        (
            await running.http.post(
                "/orders",
                content=b"{not json",
                headers=bearer(token, **{"Content-Type": "application/json"}),
            ),
            422,
        ),
        (
            await running.http.post(
                "/orders",
                content=b"x" * 70_000,
                headers=bearer(token, **{"Content-Type": "application/json"}),
            ),
            413,
        ),
        (await running.http.get("/orders/not-a-uuid", headers=bearer(token)), 422),
        (
            await running.http.post(
                "/orders",
                json={"items": ITEMS, "currency": "EUR"},
                headers=bearer(token, **{"Idempotency-Key": "has space"}),
            ),
            422,
        ),
        (await running.http.get("/orders"), 401),
        (await running.http.get("/orders", headers=bearer("not.a.jwt")), 401),
        (await running.http.delete("/orders"), 405),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Traceback" not in response.text
    assert cases[6][0].headers["www-authenticate"].startswith("Bearer")


async def test_location_honours_the_prefix_the_gateway_stripped(
    running: RunningApp, shopper: Shopper
) -> None:
    _, token = await shopper()
    body = {"items": ITEMS, "currency": "EUR"}
    created = await running.http.post(
        "/orders", json=body, headers=bearer(token, **{"X-Forwarded-Prefix": "/api"})
    )
    assert created.status_code == 201
    assert created.headers["location"] == f"/api/orders/{created.json()['id']}"
    hostile = await running.http.post(
        "/orders", json=body, headers=bearer(token, **{"X-Forwarded-Prefix": "//evil.example"})
    )
    assert hostile.headers["location"] == f"/orders/{hostile.json()['id']}"


async def test_trailing_slashes_are_404_problems_never_redirects(
    running: RunningApp, shopper: Shopper
) -> None:
    """Issue 11: a 307 to the slash-less path would put this process's address in Location."""
    _, token = await shopper()
    created = await running.http.post(
        "/orders", json={"items": ITEMS, "currency": "EUR"}, headers=bearer(token)
    )
    order_id = created.json()["id"]
    for path in ("/orders/", f"/orders/{order_id}/", f"/orders/{order_id}/cancel/"):
        for method in ("GET", "POST"):
            for headers in (bearer(token), {}):
                response = await running.http.request(
                    method, path, json={"items": ITEMS, "currency": "EUR"}, headers=headers
                )
                assert response.status_code == 404, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert "location" not in response.headers, (method, path)
    listed = await running.http.get("/orders", headers=bearer(token))
    assert [o["id"] for o in listed.json()["items"]] == [order_id]  # nothing else was created
    assert listed.json()["items"][0]["status"] != "CANCELLED"
