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
    assert {r.backend for r in table.routes} == {"user-service", "order-service", "payment-service"}
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
    ]:
        assert isinstance(table.match(method, path), RouteMatch), (method, path)
