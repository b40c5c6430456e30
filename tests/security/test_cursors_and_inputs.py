"""Issue 11 through the real gateway: forged page tokens and coercible order bodies.

A forged token here carries a VALID signature: it is signed with the secret the launched system
uses (the launcher passes no PAGE_TOKEN_SECRET, so every service runs on its development
default, as `make up` does), and only its body has the wrong shape. Each must be a 400 problem,
never a 5xx. The order bodies are values a lax parser would coerce; each must be the exact 422
and create no order.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from order_service.domain.listing import OrderFilter
from order_service.settings import DEV_PAGE_TOKEN_SECRET as ORDER_SECRET
from shop_common.pagination import sign_token
from shop_testing.page_tokens import forged_page_tokens
from shop_testing.rawhttp import RawResponse, assert_problem, raw_request
from user_service.domain.listing import UserFilter
from user_service.settings import DEV_PAGE_TOKEN_SECRET as USER_SECRET

from .conftest import Actors

pytestmark = pytest.mark.infra
# The forgeries need the launched system's secrets (the development defaults); against
# docker compose (SHOP_E2E_GATEWAY_URL) the services run with compose's own secrets.
signs_with_the_launcher_secrets = pytest.mark.launcher


def refused(response: RawResponse, status: int) -> dict[str, Any]:
    """assert_problem, minus the Server header: the `server: uvicorn` that every answer still
    carries on this branch is shop_common.web.serve's business and has its own test in
    tests/security (API8); this file is about cursors and bodies."""
    headers = [(n, v) for n, v in response.headers if n.lower() != "server"]
    return assert_problem(RawResponse(response.status, headers, response.body), status)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(gateway_url: str, path: str, token: str, **params: str) -> RawResponse:
    target = f"{path}?{urlencode(params)}" if params else path
    return await raw_request(gateway_url, "GET", target, bearer(token))


async def orders_of(gateway_url: str, token: str) -> list[str]:
    """Every order id the caller can list (walks the pages)."""
    ids: list[str] = []
    params = {"page_size": "100"}
    while True:
        response = await get(gateway_url, "/api/orders", token, **params)
        assert response.status == 200, response.body[:300]
        page = response.json()
        ids += [order["id"] for order in page["items"]]
        if page["next_page_token"] is None:
            return ids
        params["page_token"] = page["next_page_token"]


async def place(gateway_url: str, token: str, body: dict[str, Any]) -> RawResponse:
    headers = {**bearer(token), "Content-Type": "application/json"}
    return await raw_request(gateway_url, "POST", "/api/orders", headers, json.dumps(body).encode())


VALID_ORDER = {"items": [{"sku": "BOOK-001", "quantity": 1}], "currency": "EUR"}


@signs_with_the_launcher_secrets
async def test_forged_order_cursors_are_400_problems_never_5xx(
    gateway_url: str, actors: Actors
) -> None:
    placed = await place(gateway_url, actors.alice_token, VALID_ORDER)
    assert placed.status == 201, placed.body[:300]
    order = placed.json()
    valid = {
        "t": order["created_at"],
        "i": order["id"],
        "f": OrderFilter(actors.alice.id).canonical,
    }
    # The reference body is accepted: the forgeries below differ from it only in shape.
    reference = await get(
        gateway_url,
        "/api/orders",
        actors.alice_token,
        page_token=sign_token(ORDER_SECRET, json.dumps(valid).encode()),
    )
    assert reference.status == 200, reference.body[:300]
    forged = forged_page_tokens(ORDER_SECRET, valid)
    forged["too-long"] = "A" * 3000
    for label, token in forged.items():
        response = await get(gateway_url, "/api/orders", actors.alice_token, page_token=token)
        problem = refused(response, 400)
        assert problem["type"].endswith("/invalid-page-token"), (label, problem)
        assert problem["detail"].startswith("page_token"), (label, problem)
    # Bob replays Alice's (genuine) filter binding: his own filter differs, so it is refused.
    stolen = sign_token(ORDER_SECRET, json.dumps(valid).encode())
    response = await get(gateway_url, "/api/orders", actors.bob_token, page_token=stolen)
    assert refused(response, 400)["detail"] == "page_token was issued for a different filter"


@signs_with_the_launcher_secrets
async def test_forged_user_list_cursors_are_400_problems_never_502(
    gateway_url: str, actors: Actors
) -> None:
    valid = {"a": 0, "f": UserFilter().canonical}
    reference = await get(
        gateway_url,
        "/api/users",
        actors.admin_token,
        page_size="1",
        page_token=sign_token(USER_SECRET, json.dumps(valid).encode()),
    )
    assert reference.status == 200, reference.body[:300]
    for label, token in forged_page_tokens(USER_SECRET, valid).items():
        for accept in ("application/json", "application/x-ndjson"):
            response = await raw_request(
                gateway_url,
                "GET",
                "/api/users?" + urlencode({"page_token": token}),
                {**bearer(actors.admin_token), "Accept": accept},
            )
            problem = refused(response, 400)
            assert "page_token" in problem.get("detail", ""), (label, problem)


STRICT_ATTACKS: list[tuple[str, dict[str, Any], str, str]] = [
    # (label, the line, the field the single error names, its type)
    ("quantity true", {"quantity": True}, "quantity", "int_type"),
    ("quantity numeric string", {"quantity": "2"}, "quantity", "int_type"),
    ("quantity 2.0", {"quantity": 2.0}, "quantity", "int_type"),
    # The shop prices every line: a client-sent price is refused whatever its shape.
    ("price the shop's own", {"unit_price": "41.99"}, "unit_price", "extra_forbidden"),
    ("price one cent", {"unit_price": "0.01"}, "unit_price", "extra_forbidden"),
    ("price number 10.25", {"unit_price": 10.25}, "unit_price", "extra_forbidden"),
    ("price zero string", {"unit_price": "0"}, "unit_price", "extra_forbidden"),
    ("price too many digits", {"unit_price": "1" * 400}, "unit_price", "extra_forbidden"),
    ("sku lower case", {"sku": "book-001"}, "sku", "string_pattern_mismatch"),
    ("sku path traversal", {"sku": "../BOOK-001"}, "sku", "string_pattern_mismatch"),
    ("sku with a slash", {"sku": "BOOK/001"}, "sku", "string_pattern_mismatch"),
]


async def test_coercible_order_bodies_are_the_exact_422_and_create_no_order(
    gateway_url: str, actors: Actors
) -> None:
    before = await orders_of(gateway_url, actors.bob_token)
    for label, line, field, error_type in STRICT_ATTACKS:
        body = {"items": [{"sku": "BOOK-001", "quantity": 1, **line}], "currency": "EUR"}
        problem = refused(await place(gateway_url, actors.bob_token, body), 422)
        assert problem["detail"] == "The request is not valid.", label
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
            (["body", "items", "0", field], error_type)
        ], label
    assert await orders_of(gateway_url, actors.bob_token) == before


async def test_an_unknown_sku_is_a_422_naming_it_and_creates_no_order(
    gateway_url: str, actors: Actors
) -> None:
    before = await orders_of(gateway_url, actors.bob_token)
    for sku in ("NOPE-404", "BOOK-999", "A" * 32):
        body = {"items": [{"sku": "BOOK-001", "quantity": 1}, {"sku": sku, "quantity": 1}]}
        problem = refused(await place(gateway_url, actors.bob_token, body), 422)
        assert problem["sku"] == sku and sku in problem["detail"], problem
        assert problem["type"].endswith("unknown-sku")
    assert await orders_of(gateway_url, actors.bob_token) == before


async def test_a_currency_the_shop_does_not_price_in_is_a_422(
    gateway_url: str, actors: Actors
) -> None:
    body = {"items": [{"sku": "BOOK-001", "quantity": 1}], "currency": "USD"}
    problem = refused(await place(gateway_url, actors.bob_token, body), 422)
    assert "EUR" in problem["detail"]
