"""One canonical path: what a route matches is what the backend gets, whatever the spelling.

A real gateway (uvicorn) in front of a recording backend, with requests written byte for byte
(shop_testing.rawhttp), because a polite client would normalise the attack away.
"""

from __future__ import annotations

import asyncio
import string
from typing import Any

import pytest
from gateway.domain.paths import PathRefusedError, canonical_path
from gateway.domain.routes import RouteMatch, parse_routes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shop_common.auth import TokenIssuer
from shop_testing.rawhttp import RawResponse, assert_problem, raw_request

from .conftest import ORDER_ROUTES, Backend, StartGateway

pytestmark = pytest.mark.infra
TABLE = parse_routes({"routes": ORDER_ROUTES})


def _auth(issuer: TokenIssuer, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.issue('7', list(roles))}"}


@pytest.mark.parametrize(
    "target",
    [
        "/api/orders/../metrics",
        "/api/orders/%2e%2e/metrics",
        "/api/orders/%2E%2e/docs",
        "/api/orders/.%2e/openapi.json",
        "/api/orders/./ready",
        "/api/orders/x/../../metrics",
        "/api/orders/..%2fmetrics",
        "/api/orders/%2e%2e%2fmetrics",
        "/api/orders/..%5cmetrics",
        "/api/orders//metrics",
        "/api/orders/admin/../x",
        "/api/orders/%00",
        "/api/orders/%zz",
        "/api/orders/1?a=%zz",
    ],
)
async def test_paths_without_a_canonical_form_are_400_and_never_reach_the_backend(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer, target: str
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    response = await raw_request(gateway.url, "GET", target, _auth(issuer))
    assert_problem(response, 400)
    assert backend.seen == []


@pytest.mark.parametrize(
    ("target", "upstream"),
    [
        ("/api/orders/42/", "/orders/42"),
        ("/api/orders/", "/orders"),
        ("/api/%6frders/%34%32", "/orders/42"),
        ("/api/orders/%c3%a9?x=%20y", "/orders/%C3%A9?x=%20y"),
        ("/api/orders/%252e%252e/metrics", "/orders/%252e%252e/metrics"),
    ],
)
async def test_the_backend_gets_the_canonical_path_the_route_matched(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer, target: str, upstream: str
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    response = await raw_request(gateway.url, "GET", target, _auth(issuer))
    assert response.status == 200, response.body
    assert [seen["raw_path"] for seen in backend.seen] == [upstream]
    assert response.header("location") is None  # a trailing slash is never a redirect


@pytest.mark.parametrize(
    "target",
    ["/api/orders/admin/x", "/api/orders/admin/x/", "/api/orders/%61dmin/x", "/api/orders/admin/"],
)
async def test_every_spelling_of_an_admin_path_gets_the_admin_route_rule(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer, target: str
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    refused = await raw_request(gateway.url, "GET", target, _auth(issuer, "user"))
    assert_problem(refused, 403)
    assert backend.seen == []
    allowed = await raw_request(gateway.url, "GET", target, _auth(issuer, "admin"))
    assert allowed.status == 200
    assert backend.seen[0]["raw_path"].startswith("/orders/admin")


async def test_every_spelling_of_a_cached_path_shares_one_cache_entry(
    start_gateway: StartGateway, backend: Backend
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    first = await raw_request(gateway.url, "GET", "/api/orders/cached/k")
    again = [
        await raw_request(gateway.url, "GET", target)
        for target in ("/api/orders/cached/k/", "/api/orders/%63ached/%6B")
    ]
    assert first.header("x-cache") == "MISS"
    assert [r.header("x-cache") for r in again] == ["HIT", "HIT"]
    assert len(backend.seen) == 1


@pytest.mark.parametrize("public_base_url", [None, "https://shop.example.com"])
async def test_a_backend_location_at_itself_becomes_the_public_url(
    start_gateway: StartGateway,
    backend: Backend,
    issuer: TokenIssuer,
    public_base_url: str | None,
) -> None:
    gateway = await start_gateway(
        {"order-service": backend.address}, public_base_url=public_base_url
    )
    headers = {**_auth(issuer), "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    moved = await raw_request(gateway.url, "GET", "/api/orders/moved/self", headers)
    created = await raw_request(gateway.url, "POST", "/api/orders/moved/self", headers, b"{}")
    expected = f"{public_base_url or ''}/api/orders/1"
    assert (moved.status, moved.header("location")) == (307, expected)
    assert (created.status, created.header("location")) == (201, expected)


async def test_a_location_at_another_internal_address_is_refused(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    moved = await raw_request(gateway.url, "GET", "/api/orders/moved/other", _auth(issuer))
    assert_problem(moved, 502)
    # The order was created: its 201 goes out, only without the internal address.
    created = await raw_request(
        gateway.url, "POST", "/api/orders/moved/other", _auth(issuer), b"{}"
    )
    assert created.status == 201
    assert created.header("location") is None


async def test_the_gateways_own_pages_neither_redirect_nor_reflect_the_host(
    start_gateway: StartGateway, backend: Backend
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    for target in ("/docs/", "/health/", "/openapi.json/"):
        response = await raw_request(gateway.url, "GET", target, {"Host": "evil.example"})
        assert response.status == 200, (target, response.status)
        assert response.header("location") is None
        assert b"evil.example" not in response.body


# Pieces an attacker strings together: route words, dot segments in every spelling, escapes
# (slash, backslash, NUL, unreserved, UTF-8, a broken one), separators and stray characters.
_PIECES = st.sampled_from(
    [
        "api", "orders", "admin", "cached", "limited", "metrics", "x", "1",
        ".", "..", "%2e", "%2E", "%2e%2e", ".%2e", "%2f", "%2F", "%5c", "\\", "%00", "%25",
        "%61", "%6F", "%c3%a9", "%ff", "%", "%4", ";", "~", ":", "@", "+", "?", "#", "%20",
    ]
)  # fmt: skip
_SEGMENTS = st.lists(_PIECES | st.text(string.printable, max_size=2), max_size=3).map("".join)
_TARGETS = st.one_of(
    st.lists(_SEGMENTS, max_size=6).map(lambda s: "/api/orders/" + "/".join(s)),
    st.lists(_SEGMENTS, max_size=6).map(lambda s: "/" + "/".join(s)),
)


def _allowed_upstream(seen: dict[str, Any], route_name: str) -> None:
    """The backend got a canonical path, and that path (prefix restored) matches the same route."""
    raw_path: str = seen["raw_path"].partition("?")[0]
    assert canonical_path(raw_path) == raw_path, raw_path
    found = TABLE.match(seen["method"], "/api" + raw_path)
    assert isinstance(found, RouteMatch), raw_path
    assert found.route.name == route_name, (raw_path, found.route.name, route_name)
    assert not found.route.roles  # the caller has no admin role: no admin path reached


async def test_property_any_target_reaches_only_what_its_route_allows_and_never_5xx(
    start_gateway: StartGateway, backend: Backend, issuer: TokenIssuer
) -> None:
    gateway = await start_gateway({"order-service": backend.address})
    loop = asyncio.get_running_loop()
    headers = _auth(issuer, "user")

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(target=_TARGETS, method=st.sampled_from(["GET", "POST", "DELETE"]))
    def check(target: str, method: str) -> None:
        if any(c in target for c in "\r\n "):
            return  # not a request line at all: the HTTP parser's business, not the router's
        before = len(backend.seen)
        call = raw_request(gateway.url, method, target, headers, b"{}" if method == "POST" else b"")
        response: RawResponse = asyncio.run_coroutine_threadsafe(call, loop).result(30)
        assert response.status < 500, (target, response.status, response.body[:200])
        new = backend.seen[before:]
        if not new:
            return
        try:
            path = canonical_path(target.partition("?")[0].partition("#")[0])
        except PathRefusedError as exc:
            raise AssertionError(
                f"{target!r} has no canonical form but reached the backend"
            ) from exc
        found = TABLE.match(method, path)
        assert isinstance(found, RouteMatch), target
        for seen in new:
            _allowed_upstream(seen, found.route.name)

    await asyncio.to_thread(check)


async def test_the_gateways_metrics_are_for_operator_networks_only(
    start_gateway: StartGateway, backend: Backend
) -> None:
    """/metrics names every backend instance's address: 404 to a client outside METRICS_NETWORKS,
    whatever it writes in X-Forwarded-For, and served to one inside (resolved through a trusted
    proxy like any client address)."""
    outside = await start_gateway({"order-service": backend.address}, metrics_networks="10.0.0.0/8")
    for headers in ({}, {"X-Forwarded-For": "10.1.2.3"}):
        for target in ("/metrics", "/metrics/", "/%6Detrics"):
            assert_problem(await raw_request(outside.url, "GET", target, headers), 404)
    proxied = await start_gateway(
        {"order-service": backend.address},
        metrics_networks="10.0.0.0/8",
        trusted_proxies="127.0.0.1",
    )
    public = await raw_request(proxied.url, "GET", "/metrics", {"X-Forwarded-For": "203.0.113.9"})
    assert_problem(public, 404)
    operator = await raw_request(proxied.url, "GET", "/metrics", {"X-Forwarded-For": "10.1.2.3"})
    assert operator.status == 200
    assert b"gateway_upstream_duration_seconds" in operator.body
    local = await start_gateway({"order-service": backend.address})  # the default networks
    assert (await raw_request(local.url, "GET", "/metrics")).status == 200
