from pathlib import Path

import pytest
from gateway.domain.routes import MethodNotAllowed, NoRoute, RouteMatch, load_routes, parse_routes
from gateway.settings import DEFAULT_ROUTES_FILE
from pydantic import ValidationError

TABLE = parse_routes(
    {
        "routes": [
            {
                "name": "one",
                "path": "/api/orders/{order_id}",
                "methods": ["GET", "DELETE"],
                "backend": "order",
            },
            {"name": "create", "path": "/api/orders", "methods": ["POST"], "backend": "order"},
            {
                "name": "users",
                "path": "/api/users/**",
                "methods": ["GET", "PATCH"],
                "backend": "user",
            },
        ]
    }
)


def test_parameter_is_captured() -> None:
    found = TABLE.match("GET", "/api/orders/42")
    assert isinstance(found, RouteMatch)
    assert found.route.name == "one"
    assert found.params == {"order_id": "42"}


def test_wildcard_captures_the_rest_including_empty() -> None:
    deep = TABLE.match("PATCH", "/api/users/7/profile")
    assert isinstance(deep, RouteMatch)
    assert deep.rest == "7/profile"
    bare = TABLE.match("GET", "/api/users")
    assert isinstance(bare, RouteMatch)
    assert bare.rest == ""


def test_unknown_path_is_no_route() -> None:
    assert isinstance(TABLE.match("GET", "/api/nothing"), NoRoute)
    assert isinstance(TABLE.match("GET", "/api/orders/1/extra"), NoRoute)


def test_wrong_method_lists_allowed_methods() -> None:
    found = TABLE.match("PUT", "/api/orders/1")
    assert found == MethodNotAllowed(("DELETE", "GET", "HEAD"))


def test_head_follows_get() -> None:
    assert isinstance(TABLE.match("HEAD", "/api/orders/1"), RouteMatch)


@pytest.mark.parametrize("path", ["no-slash", "/a/**/b", "/a/x{id}"])
def test_bad_patterns_are_refused(path: str) -> None:
    with pytest.raises(ValidationError):
        parse_routes({"routes": [{"name": "r", "path": path, "methods": ["GET"], "backend": "b"}]})


def test_unknown_keys_and_duplicate_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_routes(
            {"routes": [{"name": "r", "path": "/a", "methods": ["GET"], "backend": "b", "x": 1}]}
        )
    with pytest.raises(ValueError, match="unique"):
        parse_routes(
            {"routes": [{"name": "r", "path": "/a", "methods": ["GET"], "backend": "b"}] * 2}
        )


def test_shipped_route_file_loads() -> None:
    table = load_routes(Path(DEFAULT_ROUTES_FILE))
    assert {r.backend for r in table.routes} == {
        "user-service",
        "order-service",
        "payment-service",
        "catalog-service",
        "web-service",
    }
    # Every public path of shop_devstack.client matches a route.
    for method, path in [
        ("GET", "/api/users/7"),
        ("GET", "/api/users/updates"),
        ("POST", "/api/users"),
        ("POST", "/api/orders"),
        ("GET", "/api/orders/abc"),
        ("POST", "/api/orders/abc/cancel"),
        ("GET", "/api/payments"),
        ("PUT", "/api/payments/admin/provider"),
        ("GET", "/api/products"),
        ("GET", "/api/products/BOOK-001"),
        ("PUT", "/api/products/BOOK-001/price"),
        ("POST", "/api/products/BOOK-001/restock"),
        ("GET", "/"),
        ("GET", "/console"),
        ("GET", "/static/js/store.js"),
        ("POST", "/web/signup"),
        ("GET", "/web/orders/abc/events"),
        ("GET", "/web/console/events"),
    ]:
        assert isinstance(table.match(method, path), RouteMatch), (method, path)
    # The gateway's own endpoints are never shadowed by the web service's pages.
    for own in ("/auth/token", "/health", "/ready", "/.well-known/jwks.json", "/docs"):
        assert not isinstance(table.match("GET", own), RouteMatch), own
    streams = {r.name for r in table.routes if r.stream}
    assert streams == {"web-order-events", "web-console"}


def test_the_root_pattern_matches_the_root_only() -> None:
    table = parse_routes(
        {"routes": [{"name": "home", "path": "/", "methods": ["GET"], "backend": "web"}]}
    )
    assert isinstance(table.match("GET", "/"), RouteMatch)
    for other in ("/x", "/x/", "/a/b"):
        assert not isinstance(table.match("GET", other), RouteMatch), other


def test_the_shipped_catalog_routes_are_public_reads_and_admin_writes() -> None:
    table = load_routes(Path(DEFAULT_ROUTES_FILE))
    for path in ("/api/products", "/api/products/BOOK-001", "/api/products/BOOK-001/stock"):
        found = table.match("GET", path)
        assert isinstance(found, RouteMatch) and found.route.name == "products", path
        assert found.route.anonymous and not found.route.auth
        assert found.route.cache_ttl_seconds > 0 and found.route.rate_limit is not None
        assert found.route.cache_vary == ("accept",)
    for method, path in (
        ("PUT", "/api/products/BOOK-001/price"),
        ("POST", "/api/products/BOOK-001/restock"),
    ):
        found = table.match(method, path)
        assert isinstance(found, RouteMatch) and found.route.auth, path
        assert found.route.roles == ("admin",) and found.route.cache_ttl_seconds == 0
    assert table.match("POST", "/api/products/BOOK-001/restock").route.retries == 0  # type: ignore[union-attr]
    # No write on the public route: the gateway answers 405 with what it allows.
    assert table.match("DELETE", "/api/products/BOOK-001") == MethodNotAllowed(("GET", "HEAD"))
    assert table.match("PUT", "/api/products") == MethodNotAllowed(("GET", "HEAD"))


@pytest.mark.parametrize(
    "extra",
    [
        {"anonymous": True},  # anonymous and auth (the default)
        {"anonymous": True, "auth": False, "roles": ["admin"]},
        {"cache_vary": ["authorization"]},  # the credentials are the scope, not a vary header
        {"cache_vary": ["Accept Language"]},
        {"cache_vary": [""]},
    ],
)
def test_an_anonymous_route_is_public_and_vary_lists_plain_header_names(
    extra: dict[str, object],
) -> None:
    route = {"name": "r", "path": "/a", "methods": ["GET"], "backend": "b", **extra}
    with pytest.raises(ValidationError):
        parse_routes({"routes": [route]})


def test_vary_names_are_lower_case_sorted_and_unique() -> None:
    route = {
        "name": "r",
        "path": "/a",
        "methods": ["GET"],
        "backend": "b",
        "cache_vary": ["Accept-Language", "accept", "ACCEPT"],
    }
    assert parse_routes({"routes": [route]}).routes[0].cache_vary == ("accept", "accept-language")
