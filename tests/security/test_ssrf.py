"""OWASP API7:2023 Server Side Request Forgery, through the real gateway.

A canary TCP server stands in for the attacker's (or an internal) host. The request target
in absolute form, Host, X-Forwarded-Host, X-Original-URL, X-Rewrite-URL, X-Forwarded-Prefix
and CONNECT all name it; the gateway must answer from the route table's backend (the order
service's own body) and the canary must see no connection at all. No request body of the API
has a URL field (orders, users, provider switches): one offered is refused, never fetched.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from shop_testing.rawhttp import assert_parser_refusal, assert_problem, raw_request

pytestmark = pytest.mark.infra

JSON = ("Content-Type", "application/json")


class Canary:
    """A listening socket that counts who connects to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nCANARY!")
        await writer.drain()
        writer.close()

    @property
    def address(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"


@pytest_asyncio.fixture
async def canary() -> AsyncIterator[Canary]:
    trap = Canary()
    trap.server = await asyncio.start_server(trap._handle, "127.0.0.1", 0)
    yield trap
    trap.server.close()
    await trap.server.wait_closed()


def auth(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def is_order_page(body: bytes) -> bool:
    page = json.loads(body)
    return isinstance(page, dict) and set(page) == {"items", "next_page_token"}


async def test_an_absolute_form_target_is_served_by_the_route_not_fetched(
    gateway_url, actors, canary
) -> None:
    for target in (f"http://{canary.address}/api/orders", "http://evil.example/api/orders"):
        answer = await raw_request(gateway_url, "GET", target, auth(actors.bob_token))
        assert answer.status == 200 and is_order_page(answer.body), answer.body[:200]
        assert b"CANARY" not in answer.body
    assert canary.connections == 0


@pytest.mark.parametrize(
    "header",
    ["Host", "X-Forwarded-Host", "X-Forwarded-Server", "X-Host", "Forwarded", "X-Original-Host"],
)
async def test_host_headers_do_not_choose_the_backend(gateway_url, actors, canary, header) -> None:
    value = f"host={canary.address}" if header == "Forwarded" else canary.address
    answer = await raw_request(
        gateway_url, "GET", "/api/orders", [*auth(actors.bob_token), (header, value)]
    )
    assert answer.status == 200 and is_order_page(answer.body), answer.body[:200]
    assert canary.connections == 0


@pytest.mark.parametrize(
    "header", ["X-Original-URL", "X-Rewrite-URL", "X-Override-URL", "X-HTTP-Destinationurl"]
)
async def test_rewrite_headers_do_not_change_the_path(gateway_url, actors, canary, header) -> None:
    for value in ("/api/payments/admin/provider", f"http://{canary.address}/", "/metrics"):
        answer = await raw_request(
            gateway_url, "GET", "/api/orders", [*auth(actors.bob_token), (header, value)]
        )
        assert answer.status == 200 and is_order_page(answer.body), answer.body[:200]
    # On a transcoded route: Bob still gets himself, not the user the header names.
    mine = await raw_request(
        gateway_url,
        "GET",
        f"/api/users/{actors.bob.id}",
        [
            *auth(actors.bob_token),
            (header, f"/api/users/{actors.alice.id}"),
            ("Cache-Control", "no-cache"),
        ],
    )
    assert mine.status == 200 and mine.json()["id"] == actors.bob.id
    assert canary.connections == 0


async def test_forwarding_headers_do_not_leak_into_the_location_of_a_new_order(
    gateway_url, actors, canary
) -> None:
    body = json.dumps({"items": [{"sku": "BOOK-001", "quantity": 1}], "currency": "EUR"}).encode()
    headers = [
        *auth(actors.bob_token),
        JSON,
        ("Idempotency-Key", uuid.uuid4().hex),
        ("X-Forwarded-Host", canary.address),
        ("X-Forwarded-Proto", "javascript"),
        ("X-Forwarded-Prefix", f"//{canary.address}"),
    ]
    answer = await raw_request(gateway_url, "POST", "/api/orders", headers, body)
    assert answer.status == 201
    location = answer.header("location") or ""
    assert location == f"/api/orders/{answer.json()['id']}"
    assert canary.connections == 0


async def test_connect_to_an_internal_address_is_refused(gateway_url, actors, canary) -> None:
    answer = await raw_request(
        gateway_url, "CONNECT", canary.address, [*auth(actors.bob_token), ("Host", canary.address)]
    )
    assert_parser_refusal(answer)  # authority-form is no request the gateway's parser serves
    assert canary.connections == 0


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        (
            "POST",
            "/api/orders",
            {
                "items": [{"sku": "BOOK-001", "quantity": 1}],
                "currency": "EUR",
                "callback_url": "URL",
            },
        ),
        (
            "POST",
            "/api/orders",
            {
                "items": [{"sku": "BOOK-001", "quantity": 1, "image_url": "URL"}],
                "currency": "EUR",
            },
        ),
        ("PATCH", "/api/users/{bob}", {"avatar_url": "URL"}),
        ("PATCH", "/api/users/{bob}", {"webhook": "URL"}),
    ],
    ids=["order_callback_url", "order_line_image_url", "user_avatar_url", "user_webhook"],
)
async def test_a_url_in_a_body_is_refused_never_fetched(
    gateway_url, actors, canary, method, target, body
) -> None:
    payload = json.dumps(body).replace("URL", f"http://{canary.address}/hook").encode()
    headers = [*auth(actors.bob_token), JSON, ("Idempotency-Key", uuid.uuid4().hex)]
    answer = await raw_request(
        gateway_url, method, target.format(bob=actors.bob.id), headers, payload
    )
    assert_problem(answer, 422)
    assert canary.connections == 0


async def test_the_admin_provider_switches_take_no_url(gateway_url, actors, canary) -> None:
    payload = json.dumps({"endpoint": f"http://{canary.address}/"}).encode()
    answer = await raw_request(
        gateway_url,
        "PUT",
        "/api/payments/admin/provider",
        [*auth(actors.admin_token), JSON],
        payload,
    )
    assert_problem(answer, 422)
    assert canary.connections == 0
