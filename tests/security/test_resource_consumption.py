"""OWASP API4:2023 Unrestricted Resource Consumption, through the real gateway.

Oversized bodies, heads and targets, unbounded pages and orders, a body that trickles in, and
the rate limit: each is refused with its exact status before it costs a backend anything
(the number of Bob's orders is read back unchanged), and the rate limit answers 429 with
Retry-After for one caller without touching another's budget.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from shop_devstack.accounts import login, new_user
from shop_devstack.client import ShopClient, bearer, check
from shop_testing.rawhttp import _parse, assert_problem, raw_request

pytestmark = pytest.mark.infra

JSON = ("Content-Type", "application/json")
GATEWAY_MAX_BODY = 1_048_576


def auth(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


async def order_count(client: ShopClient, token: str) -> int:
    response = await client.http.get(
        "/api/orders", params={"page_size": 1000}, headers=bearer(token)
    )
    return len(check(response, 200).json()["items"])


def order_body(lines: int, quantity: int = 1) -> bytes:
    items = [{"sku": f"SKU-{i}", "quantity": quantity} for i in range(lines)]
    return json.dumps({"items": items, "currency": "EUR"}).encode()


@pytest.mark.parametrize(
    "target", ["/api/orders", "/api/users", "/auth/token", "/api/payments/admin/provider"]
)
async def test_a_body_over_the_gateways_limit_is_413_at_once(
    gateway_url, actors, client, target
) -> None:
    """Declared over the limit: refused on the head, before a byte of the body is read."""
    before = await order_count(client, actors.bob_token)
    headers = [*auth(actors.bob_token), JSON, ("Content-Length", str(GATEWAY_MAX_BODY + 1))]
    answer = await raw_request(
        gateway_url, "POST" if "provider" not in target else "PUT", target, headers, b"{"
    )
    assert_problem(answer, 413)
    assert await order_count(client, actors.bob_token) == before


@pytest.mark.parametrize(
    "target",
    [
        "/api/orders?page_size=100000000",
        "/api/users?page_size=100000000",
        "/api/orders?page_size=1001",
        "/api/users?page_size=0",
    ],
)
async def test_a_huge_page_size_is_refused(gateway_url, actors, target) -> None:
    answer = await raw_request(gateway_url, "GET", target, auth(actors.admin_token))
    assert_problem(answer, 422)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (order_body(101), 422),  # over the order's 100 lines
        (order_body(5000), 413),  # over the order service's own 64 KiB body limit
        (order_body(1, quantity=10**12), 422),
        (
            json.dumps(
                {
                    "items": [{"sku": "S" * 100_000, "quantity": 1}],
                    "currency": "EUR",
                }
            ).encode(),
            413,
        ),
        (b"[" * 50_000 + b"]" * 50_000, 413),  # deep nesting never reaches a JSON parser
        (b"[" * 5_000 + b"]" * 5_000, 400),  # the parser gives up: a 400, not a 500
    ],
    ids=[
        "101_lines",
        "5000_lines",
        "huge_quantity",
        "huge_sku",
        "deep_nesting_100k",
        "deep_nesting_10k",
    ],
)
async def test_an_oversized_order_costs_nothing(gateway_url, actors, client, body, status) -> None:
    before = await order_count(client, actors.bob_token)
    headers = [*auth(actors.bob_token), JSON, ("Idempotency-Key", uuid.uuid4().hex)]
    assert_problem(await raw_request(gateway_url, "POST", "/api/orders", headers, body), status)
    assert await order_count(client, actors.bob_token) == before


async def test_a_long_header_is_431(gateway_url, actors) -> None:
    answer = await raw_request(
        gateway_url, "GET", "/api/orders", [*auth(actors.bob_token), ("X-Padding", "a" * 40000)]
    )
    assert_problem(answer, 431)


async def test_many_header_fields_are_431(gateway_url, actors) -> None:
    fields = [(f"X-Field-{i}", "v") for i in range(150)]
    answer = await raw_request(gateway_url, "GET", "/api/orders", auth(actors.bob_token) + fields)
    assert_problem(answer, 431)


async def test_a_long_url_is_414(gateway_url, actors) -> None:
    answer = await raw_request(
        gateway_url, "GET", "/api/orders?x=" + "a" * 9_000, auth(actors.bob_token)
    )
    assert_problem(answer, 414)
    long_path = await raw_request(
        gateway_url, "GET", "/api/orders/" + "a" * 9_000, auth(actors.bob_token)
    )
    assert_problem(long_path, 414)


async def test_many_query_parameters_are_414(gateway_url, actors) -> None:
    query = "&".join(f"p{i}=1" for i in range(2_000))
    answer = await raw_request(gateway_url, "GET", f"/api/orders?{query}", auth(actors.bob_token))
    assert_problem(answer, 414)


async def test_a_head_within_the_bounds_is_served(gateway_url, actors) -> None:
    """Control: ordinary sizes pass (a 4 KiB header, 50 fields, a 2 KiB query)."""
    fields = [(f"X-Field-{i}", "v") for i in range(40)] + [("X-Padding", "a" * 4_000)]
    target = "/api/orders?" + "&".join(f"p{i}=1" for i in range(300))
    answer = await raw_request(gateway_url, "GET", target, auth(actors.bob_token) + fields)
    assert answer.status == 200


async def test_a_body_that_trickles_in_is_408_and_never_forwarded(
    gateway_url, actors, client
) -> None:
    """Slow loris: a declared body of which only a part ever arrives is cut off (10 s idle)."""
    before = await order_count(client, actors.bob_token)
    parts = urlsplit(gateway_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = order_body(1)
    head = (
        f"POST /api/orders HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {actors.bob_token}\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    started = time.monotonic()
    try:
        writer.write(head.encode() + body[:10])
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    assert time.monotonic() - started < 30
    assert_problem(_parse(raw), 408)
    assert await order_count(client, actors.bob_token) == before


async def test_the_rate_limit_answers_429_with_retry_after_per_caller(
    gateway_url, actors, client
) -> None:
    """A fresh user spends its whole budget on the 100-a-minute update stream route (each
    request refused cheaply with 422 by the router after the limiter counted it)."""
    mallory = await new_user(client, actors.admin_token, "Mallory Flooder")
    token = await login(client, mallory.email, mallory.password)
    target = "/api/users/updates?ids=flood"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as http:
        first = await http.get(target, headers=bearer(token))
        assert first.status_code == 422
        policy = first.headers["ratelimit-policy"]
        assert policy == '"default";q=100;w=60'
        remaining = [int(first.headers["ratelimit"].split("r=")[1].split(";")[0])]
        assert remaining == [99]
        for _ in range(99):
            answer = await http.get(target, headers=bearer(token))
            if answer.status_code == 429:
                break
            remaining.append(int(answer.headers["ratelimit"].split("r=")[1].split(";")[0]))
        assert remaining == list(range(99, -1, -1))  # decremented by exactly one each time
    refused = await raw_request(gateway_url, "GET", target, auth(token))
    assert_problem(refused, 429)
    retry_after = refused.header("retry-after")
    assert retry_after is not None and 1 <= int(retry_after) <= 60
    # Another caller's budget on the same route is untouched.
    other = await raw_request(gateway_url, "GET", target, auth(actors.bob_token))
    assert other.status == 422
