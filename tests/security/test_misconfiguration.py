"""OWASP API8:2023 Security Misconfiguration and API9:2023 Improper Inventory Management,
through the real gateway.

API8: no server software in headers, nosniff on every JSON and problem body, problem+json for
every error (including methods nobody implements), no CORS grant to an arbitrary origin, no
cached token. The gateway's /docs and /openapi.json are public on purpose (they describe the
public API only; checked below); its /metrics is public too, for Prometheus, so it must not
name internal addresses. API9: the backends' own endpoints (/metrics, /docs, /openapi.json,
/health, /ready) and their unprefixed paths are not reachable through the gateway by their
plain spellings or by header tricks (path normalisation is test_path_normalisation's).
"""

from __future__ import annotations

import json

import pytest
from shop_testing.rawhttp import (
    assert_no_leak,
    assert_parser_refusal,
    assert_problem,
    raw_request,
)

pytestmark = pytest.mark.infra

JSON = ("Content-Type", "application/json")
EVIL_ORIGIN = "https://evil.example"


def auth(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


@pytest.fixture
def samples(actors):
    """(method, target, headers, body, status) of answers a browser could render."""
    bob = auth(actors.bob_token)
    return [
        ("GET", "/api/orders", bob, b"", 200),  # proxied JSON
        ("GET", f"/api/users/{actors.bob.id}", bob, b"", 200),  # transcoded JSON
        ("GET", "/.well-known/jwks.json", [], b"", 200),
        ("GET", "/health", [], b"", 200),
        ("GET", "/nowhere", [], b"", 404),
        ("GET", "/api/orders", [], b"", 401),
        ("GET", "/api/payments/admin/provider", bob, b"", 403),
        ("PUT", "/api/orders", bob, b"", 405),
        ("GET", "/api/orders/not-an-id", bob, b"", 422),  # the order service's problem
        ("POST", "/api/orders", [*bob, JSON], b"{not json", 422),
        ("GET", "/api/users/0", bob, b"", 422),
    ]


async def test_no_server_software_or_version_headers(gateway_url, samples) -> None:
    for method, target, headers, body, status in samples:
        answer = await raw_request(gateway_url, method, target, headers, body)
        assert answer.status == status, (target, answer.status)
        for name in ("server", "x-powered-by", "x-aspnet-version", "via"):
            assert answer.header(name) is None, (target, name, answer.header(name))


async def test_every_answer_is_nosniff_and_every_error_is_a_problem(gateway_url, samples) -> None:
    for method, target, headers, body, status in samples:
        answer = await raw_request(gateway_url, method, target, headers, body)
        assert answer.header("x-content-type-options") == "nosniff", target
        if status >= 400:
            assert_problem(answer, status)
        else:
            assert (answer.header("content-type") or "").startswith("application/json"), target
            assert_no_leak(answer)


# Methods the HTTP parser (llhttp, uvicorn's httptools) knows reach the gateway, which answers
# 405 problem+json with Allow. Tokens it does not know are not HTTP to it: it answers 400 itself
# before any application code runs (docs/security.md, "What the HTTP parser refuses").
KNOWN_METHODS = ["TRACE", "PROPFIND", "PURGE", "LINK"]
UNKNOWN_METHODS = ["TRACK", "DEBUG", "FOO"]


@pytest.mark.parametrize("method", KNOWN_METHODS)
@pytest.mark.parametrize("target", ["/api/orders", "/api/users/1"])
async def test_tracing_and_other_known_methods_are_405_problems(
    gateway_url, actors, method, target
) -> None:
    answer = await raw_request(
        gateway_url, method, target, [*auth(actors.admin_token), ("X-Secret-Probe", "echo-me")]
    )
    assert_problem(answer, 405)
    assert answer.header("allow")
    assert b"echo-me" not in answer.body and b"Bearer" not in answer.body  # nothing reflected


@pytest.mark.parametrize("method", UNKNOWN_METHODS)
@pytest.mark.parametrize("target", ["/api/orders", "/api/users/1", "/health"])
async def test_unknown_method_tokens_are_refused_by_the_parser(
    gateway_url, actors, method, target
) -> None:
    answer = await raw_request(
        gateway_url, method, target, [*auth(actors.admin_token), ("X-Secret-Probe", "echo-me")]
    )
    assert_parser_refusal(answer)
    assert b"echo-me" not in answer.body


async def test_trace_on_the_gateways_own_paths_is_a_405_problem(gateway_url) -> None:
    assert_problem(await raw_request(gateway_url, "TRACE", "/health"), 405)


async def test_cors_grants_nothing_to_an_arbitrary_origin(gateway_url, actors) -> None:
    simple = await raw_request(
        gateway_url, "GET", "/api/orders", [*auth(actors.bob_token), ("Origin", EVIL_ORIGIN)]
    )
    assert simple.status == 200
    preflight = await raw_request(
        gateway_url,
        "OPTIONS",
        "/api/orders",
        [
            ("Origin", EVIL_ORIGIN),
            ("Access-Control-Request-Method", "DELETE"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    )
    assert_problem(preflight, 405)
    for answer in (simple, preflight):
        assert answer.header("access-control-allow-origin") is None
        assert answer.header("access-control-allow-credentials") is None
    token = await raw_request(gateway_url, "OPTIONS", "/auth/token", [("Origin", EVIL_ORIGIN)])
    assert token.header("access-control-allow-origin") is None


async def test_a_token_answer_is_never_cached(gateway_url, actors) -> None:
    body = (
        f"grant_type=password&username={actors.bob.email.replace('@', '%40')}"
        f"&password={actors.bob.password}"
    ).encode()
    answer = await raw_request(
        gateway_url,
        "POST",
        "/auth/token",
        [("Content-Type", "application/x-www-form-urlencoded")],
        body,
    )
    assert answer.status == 200
    assert "no-store" in (answer.header("cache-control") or "")
    assert answer.header("x-content-type-options") == "nosniff"


async def test_the_gateways_openapi_is_public_and_describes_only_the_public_api(
    gateway_url,
) -> None:
    """Intended: the front door documents its API. It names no internal address or backend
    path, and no backend-only operation (the order and payment services' own paths)."""
    answer = await raw_request(gateway_url, "GET", "/openapi.json")
    assert answer.status == 200
    assert_no_leak(answer)
    paths = set(answer.json()["paths"])
    assert {"/auth/token", "/api/users", "/api/users/{user_id}"} <= paths
    assert not {p for p in paths if p.startswith(("/orders", "/payments"))}
    docs = await raw_request(gateway_url, "GET", "/docs")
    assert docs.status == 200 and docs.header("x-content-type-options") == "nosniff"


# --- API9: inventory ----------------------------------------------------------------------

BACKEND_OWN = [
    "metrics",
    "docs",
    "redoc",
    "openapi.json",
    "health",
    "ready",
    "docs/oauth2-redirect",
]


@pytest.mark.parametrize("name", BACKEND_OWN)
async def test_backend_endpoints_are_not_under_api(gateway_url, actors, name) -> None:
    for headers in ([], auth(actors.admin_token)):
        assert_problem(await raw_request(gateway_url, "GET", f"/api/{name}", headers), 404)


@pytest.mark.parametrize("name", ["metrics", "docs", "openapi.json", "health", "ready"])
@pytest.mark.parametrize("service", ["orders", "payments"])
async def test_backend_endpoints_are_not_under_a_backends_prefix(
    gateway_url, actors, service, name
) -> None:
    """/api/orders/metrics reaches the order service as /orders/metrics: an order id, not the
    service's /metrics (422: not a UUID); anonymous callers never get past the gateway."""
    target = f"/api/{service}/{name}"
    assert_problem(await raw_request(gateway_url, "GET", target), 401)
    answer = await raw_request(gateway_url, "GET", target, auth(actors.admin_token))
    assert_problem(answer, 422)
    assert b"# HELP" not in answer.body and b'"paths"' not in answer.body


@pytest.mark.parametrize(
    "target",
    [
        "/orders",
        "/payments",
        "/payments/admin/provider",
        "/api/v1/orders",
        "/v1/api/orders",
        "/api/v2/payments/admin/provider",
        "/api/order",
        "/api/Orders",
        "/API/orders",
        "/internal/orders",
        "/user.v1.UserService/GetUser",
        "/shop.user.v1.UserService/ListUsers",
    ],
)
async def test_unprefixed_old_and_variant_spellings_are_404(gateway_url, actors, target) -> None:
    answer = await raw_request(gateway_url, "GET", target, auth(actors.admin_token))
    assert_problem(answer, 404)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Original-URL", "/metrics"),
        ("X-Rewrite-URL", "/openapi.json"),
        ("X-Forwarded-Prefix", "/"),
        ("X-Forwarded-Path", "/metrics"),
        ("X-Envoy-Original-Path", "/docs"),
    ],
)
async def test_header_tricks_do_not_reach_backend_endpoints(
    gateway_url, actors, header, value
) -> None:
    answer = await raw_request(
        gateway_url, "GET", "/api/orders", [*auth(actors.bob_token), (header, value)]
    )
    assert answer.status == 200
    assert set(json.loads(answer.body)) == {"items", "next_page_token"}
