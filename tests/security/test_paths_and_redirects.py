"""Path normalisation and redirects, attacked through the real gateway and the real backends.

Every spelling of a path gets the rules of the one route its canonical form matches, no
spelling reaches a backend path outside its route, and no answer carries an internal address
or the request's Host back to the client (docs/security.md, "Paths" and "Redirects").
"""

from __future__ import annotations

import json
import uuid

import pytest
from shop_devstack.client import Item, ShopClient
from shop_testing.rawhttp import RawResponse, assert_no_leak, assert_problem, raw_request

from .conftest import Actors

pytestmark = pytest.mark.infra

INTERNAL = ("metrics", "docs", "openapi.json", "ready")
TRAVERSALS = ("../", "%2e%2e/", "%2E%2E/", ".%2e/", "./../", "x/../../", "..%2f", "%2e%2e%2f")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("route", ["/api/orders/", "/api/payments/"])
@pytest.mark.parametrize("traversal", TRAVERSALS)
@pytest.mark.parametrize("internal", INTERNAL)
async def test_no_spelling_of_a_traversal_reaches_a_backends_internal_endpoint(
    gateway_url: str, actors: Actors, route: str, traversal: str, internal: str
) -> None:
    response = await raw_request(
        gateway_url, "GET", route + traversal + internal, _auth(actors.bob_token)
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("internal", INTERNAL)
async def test_internal_endpoints_are_not_routed_by_their_plain_names(
    gateway_url: str, actors: Actors, internal: str
) -> None:
    for target in (f"/api/{internal}", f"/api/orders/{internal}", f"/api/payments/{internal}"):
        response = await raw_request(gateway_url, "GET", target, _auth(actors.bob_token))
        assert response.status in (400, 404, 405, 422), (target, response.status)
        assert b"# HELP" not in response.body and b"swagger" not in response.body.lower()
        assert_no_leak(response)


async def _order(client: ShopClient, token: str) -> str:
    item = Item("BOOK-001", 1)
    response = await client.place_order(token, [item])
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_trailing_slash_is_the_same_resource_with_no_redirect(
    gateway_url: str, actors: Actors, client: ShopClient
) -> None:
    order_id = await _order(client, actors.alice_token)
    auth = _auth(actors.alice_token)
    for plain in ("/api/orders", f"/api/orders/{order_id}", f"/api/payments?order_id={order_id}"):
        path, _, query = plain.partition("?")
        slashed = path + "/" + (f"?{query}" if query else "")
        first = await raw_request(gateway_url, "GET", plain, auth)
        second = await raw_request(gateway_url, "GET", slashed, auth)
        assert first.status == second.status == 200, (plain, first.status, second.status)
        assert second.header("location") is None
        assert _ids(first) <= _ids(second)  # the same resource (a payment may land between)


def _ids(response: RawResponse) -> set[str]:
    """The ids a body names: an order's own, or those of a list page's items."""
    body = response.json()
    if "id" in body:
        return {str(body["id"])}
    return {str(item["id"]) for item in body["items"]}


async def test_a_post_with_a_trailing_slash_creates_and_links_without_an_internal_address(
    gateway_url: str, actors: Actors, client: ShopClient
) -> None:
    body = json.dumps({"items": [{"sku": "BOOK-002", "quantity": 1}], "currency": "EUR"}).encode()
    headers = {
        **_auth(actors.alice_token),
        "Content-Type": "application/json",
        "Idempotency-Key": uuid.uuid4().hex,
        "Host": "evil.example",
    }
    created = await raw_request(gateway_url, "POST", "/api/orders/", headers, body)
    assert created.status == 201, created.body
    order_id = created.json()["id"]
    assert created.header("location") == f"/api/orders/{order_id}"
    assert_no_leak(created)
    assert (await client.get_order(actors.alice_token, order_id))["id"] == order_id


async def _provider(gateway_url: str, admin_token: str) -> RawResponse:
    response = await raw_request(
        gateway_url, "GET", "/api/payments/admin/provider", _auth(admin_token)
    )
    assert response.status == 200, response.body
    return response


SWITCHES = ("latency_ms", "transient_failure_rate", "decline_above", "down")


async def _switches(gateway_url: str, admin_token: str) -> dict[str, object]:
    """The provider's fault switches (its counters move with other tests' orders)."""
    state = (await _provider(gateway_url, admin_token)).json()
    return {name: state[name] for name in SWITCHES}


@pytest.mark.parametrize(
    "target",
    [
        "/api/payments/admin/provider/",
        "/api/payments/%61dmin/provider",
        "/api/payments/admin/%70rovider/",
    ],
)
async def test_every_spelling_of_the_admin_route_gets_its_role_rule(
    gateway_url: str, actors: Actors, target: str
) -> None:
    before = await _switches(gateway_url, actors.admin_token)
    body = json.dumps({"down": True}).encode()
    headers = {**_auth(actors.bob_token), "Content-Type": "application/json"}
    assert_problem(await raw_request(gateway_url, "PUT", target, headers, body), 403)
    assert await _switches(gateway_url, actors.admin_token) == before


async def test_a_traversal_into_the_admin_route_is_refused(
    gateway_url: str, actors: Actors
) -> None:
    before = await _switches(gateway_url, actors.admin_token)
    body = json.dumps({"down": True}).encode()
    headers = {**_auth(actors.bob_token), "Content-Type": "application/json"}
    for target in ("/api/payments/x/../admin/provider", "/api/payments/%2e/admin/provider"):
        assert_problem(await raw_request(gateway_url, "PUT", target, headers, body), 400)
    assert await _switches(gateway_url, actors.admin_token) == before


async def test_every_spelling_of_the_admin_route_gets_its_own_rate_limit(
    gateway_url: str, actors: Actors
) -> None:
    plain = await _provider(gateway_url, actors.admin_token)
    spelled = await raw_request(
        gateway_url, "GET", "/api/payments/%61dmin/provider/", _auth(actors.admin_token)
    )
    assert spelled.status == 200
    policy = plain.header("ratelimit-policy")
    assert policy is not None and "q=60;" in policy
    assert spelled.header("ratelimit-policy") == policy


@pytest.mark.parametrize("target", ["/docs/", "/openapi.json/", "/health/", "/api/orders/"])
async def test_the_request_host_is_never_reflected(
    gateway_url: str, actors: Actors, target: str
) -> None:
    headers = {
        **_auth(actors.alice_token),
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
    }
    response = await raw_request(gateway_url, "GET", target, headers)
    assert response.status == 200, (target, response.status)
    assert response.header("location") is None
    assert b"evil.example" not in response.body


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        ("DELETE", "/api/orders/1", "GET, HEAD, POST"),
        ("PUT", "/api/orders/1", "GET, HEAD, POST"),
        ("PUT", "/api/payments/anything", "GET, HEAD"),
        ("POST", "/api/payments", "GET, HEAD"),
    ],
)
async def test_the_route_table_lists_only_what_backends_implement(
    gateway_url: str, actors: Actors, method: str, target: str, allow: str
) -> None:
    """A method no backend implements is the gateway's 405; it never reaches a backend."""
    answer = await raw_request(gateway_url, method, target, _auth(actors.bob_token), b"{}")
    assert_problem(answer, 405)
    assert answer.header("allow") == allow


async def test_a_backends_problem_names_the_public_path(gateway_url: str, actors: Actors) -> None:
    """`instance` is the path the client asked for, not the service's own layout."""
    answer = await raw_request(gateway_url, "GET", "/api/orders/not-an-id", _auth(actors.bob_token))
    body = assert_problem(answer, answer.status)
    assert 400 <= answer.status < 500
    assert body["instance"] == "/api/orders/not-an-id"
