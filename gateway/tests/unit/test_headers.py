from gateway.domain.forwarding import ClientAddress
from gateway.domain.headers import strip_hop_by_hop, upstream_request_headers


def _names(headers: list[tuple[str, str]]) -> set[str]:
    return {n.lower() for n, _ in headers}


def test_hop_by_hop_and_connection_named_fields_are_removed() -> None:
    out = strip_hop_by_hop(
        [
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Secret-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Accept", "application/json"),
        ]
    )
    assert out == [("Accept", "application/json")]


def test_spoofed_identity_is_replaced_by_the_gateway() -> None:
    out = upstream_request_headers(
        [("X-User-ID", "1"), ("x-user-roles", "admin"), ("Accept", "*/*")],
        client_ip="10.0.0.9",
        scheme="http",
        host="shop.local",
        request_id="rid",
        user_id="42",
        roles=["customer"],
    )
    assert [v for n, v in out if n.lower() == "x-user-id"] == ["42"]
    assert [v for n, v in out if n.lower() == "x-user-roles"] == ["customer"]


def test_anonymous_request_carries_no_identity() -> None:
    out = upstream_request_headers(
        [("X-User-ID", "1")],
        client_ip="10.0.0.9",
        scheme="https",
        host="h",
        request_id="rid",
        user_id=None,
        roles=[],
    )
    assert "x-user-id" not in _names(out)
    assert "x-user-roles" not in _names(out)


def test_an_untrusted_peers_forwarding_headers_are_replaced_by_the_gateways_view() -> None:
    out = upstream_request_headers(
        [
            ("X-Forwarded-For", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=1.2.3.4;proto=https;host=evil.example"),
            ("X-Request-ID", "client"),
            ("Host", "x"),
        ],
        client_ip="10.0.0.9",
        scheme="http",
        host="shop.local",
        request_id="gw-rid",
        user_id=None,
        roles=[],
    )
    assert [(n.lower(), v) for n, v in out if n.lower().startswith(("x-forwarded", "forw"))] == [
        ("x-forwarded-for", "10.0.0.9"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "shop.local"),
    ]
    values = {n.lower(): v for n, v in out}
    assert values["x-request-id"] == "gw-rid"
    assert "host" not in values


def test_a_resolved_untrusted_peer_is_treated_like_a_bare_address() -> None:
    out = upstream_request_headers(
        [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")],
        client_ip=ClientAddress("10.0.0.9", "10.0.0.9", peer_trusted=False),
        scheme="http",
        host="shop.local",
        request_id="rid",
        user_id=None,
        roles=[],
    )
    values = {n.lower(): v for n, v in out}
    assert values["x-forwarded-for"] == "10.0.0.9"
    assert values["x-forwarded-proto"] == "http"


def test_a_trusted_proxys_proto_host_and_forwarded_pass_and_xff_is_the_resolved_client() -> None:
    out = upstream_request_headers(
        [
            ("X-Forwarded-For", "6.6.6.6, 203.0.113.5"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "shop.example"),
            ("Forwarded", "for=203.0.113.5;proto=https"),
        ],
        client_ip=ClientAddress("203.0.113.5", "10.0.0.2", peer_trusted=True),
        scheme="http",
        host="gateway.internal",
        request_id="rid",
        user_id=None,
        roles=[],
    )
    assert [(n.lower(), v) for n, v in out if n.lower().startswith(("x-forwarded", "forw"))] == [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example"),
        ("forwarded", "for=203.0.113.5;proto=https"),
        ("x-forwarded-for", "203.0.113.5"),
    ]


def test_stripped_prefix_is_forwarded_and_a_client_copy_dropped() -> None:
    out = upstream_request_headers(
        [("X-Forwarded-Prefix", "/evil")],
        client_ip="10.0.0.9",
        scheme="http",
        host="h",
        request_id="rid",
        user_id=None,
        roles=[],
        prefix="/api",
    )
    assert [v for n, v in out if n.lower() == "x-forwarded-prefix"] == ["/api"]
    unprefixed = upstream_request_headers(
        [("X-Forwarded-Prefix", "/evil")],
        client_ip="10.0.0.9",
        scheme="http",
        host="h",
        request_id="rid",
        user_id=None,
        roles=[],
    )
    assert "x-forwarded-prefix" not in _names(unprefixed)
