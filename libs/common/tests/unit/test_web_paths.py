"""shop_common.web.paths: the public path behind a gateway that stripped a prefix."""

from __future__ import annotations

import pytest
from shop_common.web.paths import forwarded_prefix, public_path
from starlette.requests import Request


def _request(path: str, prefix: str | None) -> Request:
    headers = [(b"x-forwarded-prefix", prefix.encode())] if prefix is not None else []
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers, "query_string": b""}
    return Request(scope)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (None, ""),
        ("/api", "/api"),
        ("/api/", "/api"),
        ("/api/v1.2", "/api/v1.2"),
        ("/..", ""),
        ("/api/../admin", ""),
        ("/.", ""),
        ("api", ""),
        ("//evil.example", ""),
        ("/a b", ""),
        ("http://evil.example", ""),
    ],
)
def test_only_a_sane_forwarded_prefix_is_believed(prefix: str | None, expected: str) -> None:
    assert forwarded_prefix(_request("/orders/7", prefix)) == expected


def test_the_public_path_puts_the_prefix_back() -> None:
    assert public_path(_request("/orders/7", "/api")) == "/api/orders/7"
    assert public_path(_request("/orders/7", "/../x")) == "/orders/7"
