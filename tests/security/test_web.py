"""The web service's pages and API (services/web) attacked through the real gateway.

Pages and static files are public and the same for everyone: hostile query strings, headers
and path tricks never reach a file outside the static directory, never echo into the page,
and every answer carries the Content-Security-Policy. Sign-up refuses roles and junk, and is
rate-limited per address. The order stream needs the owner's token; every console endpoint
refuses the anonymous (401) and a shopper (403), and an admin's hostile input is a 4xx.
"""

from __future__ import annotations

import json
import uuid

import pytest
from shop_testing.rawhttp import RawResponse, assert_no_leak, assert_problem, raw_request

from .conftest import Actors

pytestmark = pytest.mark.infra

HOSTILE_QUERIES = (
    "?q=<script>alert(1)</script>",
    "?%00=%00",
    "?a=${jndi:ldap://x}",
    "?x={{7*7}}",
    "?" + "a=1&" * 500,
    "?token=eyJhbGciOiJub25lIn0.e30.",
)
HOSTILE_HEADERS = (
    {"Host": "evil.example"},
    {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "javascript"},
    {"Accept": "text/event-stream"},
    {"Cookie": "session=" + "x" * 2000},
    {"Authorization": "Bearer not.a.jwt"},
    {"X-User-ID": "1", "X-User-Roles": "admin"},
)
TRAVERSALS = (
    "/static/../../etc/passwd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fbootstrap.py",
    "/static/js/..%5c..%5csettings.py",
    "/static/%00",
    "/static/js/api.js%00.png",
    "//static/js/api.js",
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _secured(response: RawResponse) -> None:
    policy = response.header("content-security-policy") or ""
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
    assert response.header("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_pages_ignore_hostile_query_strings(gateway_url: str, query: str) -> None:
    for path in ("/", "/console", "/static/js/store.js"):
        response = await raw_request(gateway_url, "GET", path + query, {})
        assert response.status == 200, (path, response.status, response.body[:200])
        _secured(response)
        assert_no_leak(response)
        assert b"<script>alert(1)" not in response.body  # never echoed into a page


@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=lambda h: ",".join(h))
async def test_pages_ignore_hostile_headers(gateway_url: str, headers: dict[str, str]) -> None:
    response = await raw_request(gateway_url, "GET", "/", headers)
    assert response.status == 200, response.body[:200]
    _secured(response)
    assert b"evil.example" not in response.body
    assert response.header("set-cookie") is None


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_no_path_trick_reaches_a_file_outside_static(gateway_url: str, target: str) -> None:
    response = await raw_request(gateway_url, "GET", target, {})
    assert response.status in (400, 404), (target, response.status, response.body[:200])
    assert_no_leak(response)
    assert b"root:x:" not in response.body and b"from __future__" not in response.body


async def test_pages_take_get_only(gateway_url: str) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = await raw_request(gateway_url, method, "/", {}, b"x")
        assert response.status == 405, (method, response.status)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"not json",
        b"[]",
        json.dumps(
            {"email": "a@b.example", "name": "A", "password": "long enough", "roles": ["admin"]}
        ).encode(),
        json.dumps({"email": "a@b.example", "name": 1, "password": "long enough"}).encode(),
        json.dumps(
            {"email": "'; DROP TABLE users; --", "name": "A", "password": "long enough"}
        ).encode(),
        json.dumps({"email": "a@b.example", "name": "A\u0000", "password": "long enough"}).encode(),
        json.dumps({"email": "a@b.example", "name": "A", "password": "x" * 5000}).encode(),
    ],
)
async def test_sign_up_refuses_junk_and_roles(gateway_url: str, body: bytes) -> None:
    response = await raw_request(
        gateway_url, "POST", "/web/signup", {"Content-Type": "application/json"}, body
    )
    assert response.status in (422, 429), (response.status, response.body[:300])
    assert_problem(response, response.status)


async def test_order_stream_needs_the_owners_token(gateway_url: str, actors: Actors) -> None:
    order = str(uuid.uuid4())
    path = f"/web/orders/{order}/events"
    assert_problem(await raw_request(gateway_url, "GET", path, {}), 401)
    assert_problem(await raw_request(gateway_url, "GET", path, bearer("a.b.c")), 401)
    # Someone else's (or no) order: the order service's 404, never its existence.
    assert_problem(await raw_request(gateway_url, "GET", path, bearer(actors.bob_token)), 404)
    for bad in ("..%2f..%2fmetrics", "%00", "x" * 300, "1%20OR%201=1"):
        response = await raw_request(
            gateway_url, "GET", f"/web/orders/{bad}/events", bearer(actors.bob_token)
        )
        assert response.status in (400, 404, 414, 422), (bad, response.status)
        assert_no_leak(response)


CONSOLE = (
    ("GET", "/web/console/snapshot", b""),
    ("GET", "/web/console/events", b""),
    ("GET", "/web/console/events?x=<script>", b""),
    ("GET", "/web/console/dead-letters/payment.order-events", b""),
    ("POST", "/web/console/dead-letters/payment.order-events/replay", b'{"ids": []}'),
    ("GET", "/web/console/chaos", b""),
    ("PUT", "/web/console/chaos/order-service", b'{"path_prefix": "/orders", "error_ratio": 1}'),
    ("DELETE", "/web/console/chaos/order-service", b""),
)


@pytest.mark.parametrize(("method", "target", "body"), CONSOLE)
async def test_console_endpoints_refuse_the_anonymous_and_shoppers(
    gateway_url: str, actors: Actors, method: str, target: str, body: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    assert_problem(await raw_request(gateway_url, method, target, headers, body), 401)
    forged = {**headers, "X-User-Roles": "admin", **bearer(actors.alice_token)}
    assert_problem(await raw_request(gateway_url, method, target, forged, body), 403)


async def test_an_admins_hostile_console_input_is_a_4xx(gateway_url: str, actors: Actors) -> None:
    admin = {**bearer(actors.admin_token), "Content-Type": "application/json"}
    for target in (
        "/web/console/dead-letters/no.such.queue",
        "/web/console/dead-letters/..%2f..%2fetc",
        "/web/console/dead-letters/A%00B",
        "/web/console/dead-letters/" + "q" * 300,
        "/web/console/dead-letters/payment.order-events?limit=-1",
        "/web/console/dead-letters/payment.order-events?limit=99999999999999999999",
    ):
        response = await raw_request(gateway_url, "GET", target, admin)
        assert response.status in (400, 404, 414, 422), (target, response.status)
        assert_no_leak(response)
    for body in (b'{"ids": "all"}', b'{"ids": [1]}', b'{"other": 1}', b"[", b'{"ids": [""]}'):
        response = await raw_request(
            gateway_url,
            "POST",
            "/web/console/dead-letters/payment.order-events/replay",
            admin,
            body,
        )
        assert_problem(response, 422)


@pytest.mark.parametrize(
    "target",
    [
        "/admin/chaos",
        "/api/orders/admin/chaos",
        "/api/orders/../admin/chaos",
        "/api/products/%2e%2e/%2e%2e/admin/chaos",
        "/api/payments/..%2fadmin%2fchaos",
    ],
)
async def test_no_services_chaos_switch_is_reachable_through_the_gateway(
    gateway_url: str, actors: Actors, target: str
) -> None:
    """Only the console reaches the switches (from inside); from outside, even an admin cannot."""
    headers = {**bearer(actors.admin_token), "Content-Type": "application/json"}
    body = b'{"path_prefix": "/", "error_ratio": 1}'
    response = await raw_request(gateway_url, "PUT", target, headers, body)
    assert response.status in (400, 404, 405), (target, response.status, response.body[:200])
    assert_no_leak(response)


async def test_the_trace_receiver_is_not_reachable_through_the_gateway(gateway_url: str) -> None:
    """POST /v1/traces is the web service's internal OTLP endpoint: the gateway has no route."""
    for target in ("/v1/traces", "/static/../v1/traces", "/web/../v1/traces"):
        response = await raw_request(
            gateway_url, "POST", target, {"Content-Type": "application/x-protobuf"}, b"\x0a\x00"
        )
        assert response.status in (400, 404, 405), (target, response.status)
        assert_no_leak(response)
