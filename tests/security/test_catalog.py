"""The public catalog (/api/products) attacked through the real gateway and the real catalog.

Public reads need no token and ignore one; hostile search text, forged or stolen cursors, bad
skus, path tricks and huge page sizes are each a 4xx problem (never a 5xx, never an internal
detail); no request poisons the shared cache entry another client gets; the admin writes need
the admin role at the gateway and at the catalog, and a refused write changes nothing.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, urlencode

import pytest
from catalog_service.domain.listing import ProductFilter
from catalog_service.settings import DEV_PAGE_TOKEN_SECRET as CATALOG_SECRET
from shop_common.pagination import sign_token
from shop_testing.page_tokens import forged_page_tokens
from shop_testing.rawhttp import RawResponse, assert_no_leak, assert_problem, raw_request

from .conftest import Actors

pytestmark = pytest.mark.infra

HOSTILE_Q = (
    "'; DROP TABLE products; --",
    "%",
    "_",
    "\\",
    "a%_\\%",
    "é" * 100,
    "<script>alert(1)</script>",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "   ",
)
REFUSED_Q = ("\x00", "a\x00b", "\x1b[31m", "x" * 101, "")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: RawResponse, status: int) -> dict[str, object]:
    """A problem+json with that status that leaks nothing (no trace, no SQL, no address)."""
    assert_no_leak(response)
    headers = [(n, v) for n, v in response.headers if n.lower() != "server"]
    return assert_problem(RawResponse(response.status, headers, response.body), status)


async def products(
    gateway_url: str, headers: dict[str, str] | None = None, **params: str
) -> RawResponse:
    target = "/api/products" + (f"?{urlencode(params)}" if params else "")
    return await raw_request(gateway_url, "GET", target, headers or {})


async def stock_of(gateway_url: str, sku: str) -> int:
    response = await raw_request(gateway_url, "GET", f"/api/products/{sku}/stock", {})
    assert response.status == 200, response.body[:300]
    return int(response.json()["available"])


async def price_of(gateway_url: str, sku: str) -> str:
    target = f"/api/products/{sku}?fresh={uuid.uuid4().hex}"  # its own cache entry: a fresh read
    response = await raw_request(gateway_url, "GET", target, {})
    assert response.status == 200, response.body[:300]
    return str(response.json()["price"])


async def test_the_listing_is_public_and_a_token_of_any_kind_is_not_read(
    gateway_url: str, actors: Actors
) -> None:
    anonymous = await products(gateway_url, page_size="2")
    assert anonymous.status == 200, anonymous.body[:300]
    for headers in (
        bearer(actors.bob_token),
        bearer("not.a.jwt"),
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Cookie": "session=admin"},
    ):
        response = await products(gateway_url, headers, page_size="2")
        assert response.status == 200, (headers, response.status)
        assert response.json() == anonymous.json()


@pytest.mark.parametrize("q", HOSTILE_Q)
async def test_hostile_search_text_is_an_ordinary_search(gateway_url: str, q: str) -> None:
    response = await products(gateway_url, q=q)
    assert response.status in (200, 422), (q, response.status)
    if response.status == 200:
        assert isinstance(response.json()["items"], list)
        assert_no_leak(response)
    else:
        refused(response, 422)


@pytest.mark.parametrize("q", REFUSED_Q)
async def test_control_characters_and_overlong_search_text_are_422(
    gateway_url: str, q: str
) -> None:
    refused(await products(gateway_url, q=q), 422)


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "100000"},
        {"page_size": "1001"},
        {"page_size": str(2**64)},
        {"page_size": "-1"},
        {"page_size": "0"},
        {"page_size": "1e3"},
        {"page_size": "NaN"},
        {"category": "weapons"},
        {"category": "BOOKS"},
    ],
)
async def test_huge_or_malformed_page_sizes_and_unknown_categories_are_422(
    gateway_url: str, params: dict[str, str]
) -> None:
    refused(await products(gateway_url, **params), 422)


@pytest.mark.launcher  # signed with the launched system's development secret
async def test_forged_and_stolen_catalog_cursors_are_400_problems_never_5xx(
    gateway_url: str,
) -> None:
    books = ProductFilter(None, None)
    valid = {"s": "BOOK-001", "f": books.canonical}
    reference = await products(
        gateway_url, page_token=sign_token(CATALOG_SECRET, json.dumps(valid).encode())
    )
    assert reference.status == 200, reference.body[:300]
    forged = forged_page_tokens(CATALOG_SECRET, valid)
    forged["too-long"] = "A" * 3000
    forged["unsigned"] = "eyJzIjoiQk9PSy0wMDEifQ"
    for label, token in forged.items():
        problem = refused(await products(gateway_url, page_token=token), 400)
        assert str(problem["type"]).endswith("/invalid-page-token"), (label, problem)
    # A genuine token replayed with other filters is refused, not silently re-scoped.
    genuine = reference.json()["next_page_token"]
    assert genuine is not None
    refused(await products(gateway_url, page_token=genuine, category="toys"), 400)


@pytest.mark.parametrize(
    "sku",
    [
        "book-001",
        "BOOK_001",
        "BOOK-001;DROP",
        "B",
        "A" * 200,
        "%00",
        "BOOK-001%00",
        "%27%20OR%201%3D1",
        quote("BOOK-001'--", safe=""),
    ],
)
async def test_a_malformed_sku_is_a_4xx_problem(gateway_url: str, sku: str) -> None:
    for suffix in ("", "/image", "/stock"):
        response = await raw_request(gateway_url, "GET", f"/api/products/{sku}{suffix}", {})
        assert 400 <= response.status < 500, (sku, suffix, response.status)
        refused(response, response.status)


@pytest.mark.parametrize(
    "target",
    [
        "/api/products/../orders",
        "/api/products/%2e%2e/orders",
        "/api/products/BOOK-001/..%2f..%2fmetrics",
        "/api/products/%2Fetc%2Fpasswd",
        "/api/products//BOOK-001",
        "/api/products/BOOK-001/%5c..%5cmetrics",
    ],
)
async def test_path_tricks_never_leave_the_catalog_route(gateway_url: str, target: str) -> None:
    refused(await raw_request(gateway_url, "GET", target, {}), 400)


@pytest.mark.parametrize("internal", ["metrics", "docs", "openapi.json", "ready", "health"])
async def test_the_catalogs_own_endpoints_are_not_reachable_through_the_route(
    gateway_url: str, internal: str
) -> None:
    response = await raw_request(gateway_url, "GET", f"/api/products/{internal}", {})
    assert response.status in (404, 422), response.status  # an sku that does not exist or parse
    assert b"# HELP" not in response.body and b"swagger" not in response.body.lower()
    assert_no_leak(response)


async def test_no_request_header_poisons_the_shared_entry(gateway_url: str) -> None:
    marker = uuid.uuid4().hex
    target = f"/api/products?category=garden&poison={marker}"
    poisoned = await raw_request(
        gateway_url,
        "GET",
        target,
        {
            "X-Forwarded-Prefix": "//evil.example",
            "X-Forwarded-Host": "evil.example",
            "Host": "evil.example",
            "X-User-ID": "1",
        },
    )
    assert poisoned.status == 200, poisoned.body[:300]
    clean = await raw_request(gateway_url, "GET", target, {})
    assert clean.header("x-cache") == "HIT"
    assert b"evil.example" not in clean.body
    assert all(item["image_url"].startswith("/api/products/") for item in clean.json()["items"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/products/GRDN-001/price", {"price": "0.01"}),
        ("POST", "/api/products/GRDN-001/restock", {"quantity": 1000}),
    ],
)
async def test_admin_writes_need_the_admin_role_and_a_refusal_changes_nothing(
    gateway_url: str, actors: Actors, method: str, path: str, body: dict[str, object]
) -> None:
    before = (await price_of(gateway_url, "GRDN-001"), await stock_of(gateway_url, "GRDN-001"))
    payload = json.dumps(body).encode()
    json_type = {"Content-Type": "application/json"}
    for headers, status in (
        (json_type, 401),
        ({**json_type, **bearer("not.a.jwt")}, 401),
        ({**json_type, **bearer(actors.bob_token)}, 403),
        ({**json_type, "X-User-ID": "1", "X-User-Roles": "admin"}, 401),
    ):
        refused(await raw_request(gateway_url, method, path, headers, payload), status)
    for spelled in (path + "/", path.replace("products", "%70roducts")):
        answer = await raw_request(
            gateway_url, method, spelled, {**json_type, **bearer(actors.bob_token)}, payload
        )
        refused(answer, 403)
    after = (await price_of(gateway_url, "GRDN-001"), await stock_of(gateway_url, "GRDN-001"))
    assert after == before


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"price": "-1.00"}',
        b'{"price": "0"}',
        b'{"price": "1e9999"}',
        b'{"price": "NaN"}',
        b'{"price": 12.5, "extra": 1}',
        b'{"price": "12.345"}',
        b"[]",
    ],
)
async def test_an_admins_malformed_price_is_a_4xx_and_changes_nothing(
    gateway_url: str, actors: Actors, body: bytes
) -> None:
    before = await price_of(gateway_url, "GRDN-002")
    headers = {**bearer(actors.admin_token), "Content-Type": "application/json"}
    answer = await raw_request(gateway_url, "PUT", "/api/products/GRDN-002/price", headers, body)
    assert 400 <= answer.status < 500, (body, answer.status)
    refused(answer, answer.status)
    assert await price_of(gateway_url, "GRDN-002") == before


@pytest.mark.parametrize("quantity", ["0", "-5", "1e3", "10000000000", '"3"', "true", "null"])
async def test_an_admins_malformed_or_huge_restock_is_a_4xx_and_changes_nothing(
    gateway_url: str, actors: Actors, quantity: str
) -> None:
    before = await stock_of(gateway_url, "GRDN-003")
    headers = {**bearer(actors.admin_token), "Content-Type": "application/json"}
    body = f'{{"quantity": {quantity}}}'.encode()
    answer = await raw_request(gateway_url, "POST", "/api/products/GRDN-003/restock", headers, body)
    assert 400 <= answer.status < 500, (quantity, answer.status)
    refused(answer, answer.status)
    assert await stock_of(gateway_url, "GRDN-003") == before


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("DELETE", "/api/products/BOOK-001"),
        ("POST", "/api/products"),
        ("PATCH", "/api/products/BOOK-001/price"),
    ],
)
async def test_methods_the_catalog_does_not_offer_are_the_gateways_405(
    gateway_url: str, actors: Actors, method: str, target: str
) -> None:
    answer = await raw_request(gateway_url, method, target, bearer(actors.admin_token), b"{}")
    refused(answer, 405)
