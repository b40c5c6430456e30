"""The canonical path (gateway.domain.paths) and public Location headers (gateway.domain.redirects)."""

from __future__ import annotations

import pytest
from gateway.domain.errors import UpstreamError
from gateway.domain.paths import PathRefusedError, canonical_path, check_query, decoded_path
from gateway.domain.redirects import is_internal_host, public_headers, public_location
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/", "/"),
        ("/api/orders", "/api/orders"),
        ("/api/orders/", "/api/orders"),  # the trailing-slash rule
        ("/api/%6Frders/%7e", "/api/orders/~"),  # escapes of unreserved characters decoded
        ("/a/%c3%a9", "/a/%C3%A9"),  # other escapes kept, upper-case hex
        ("/a/%252e%252e", "/a/%252e%252e"),  # "%25" stays encoded: one decoding only
        ("/a/..;/b", "/a/..;/b"),  # "..;" is a segment like any other, not a dot segment
        ("/a/b:c@d!$&'()*+,;=", "/a/b:c@d!$&'()*+,;="),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "/api/orders/../metrics",
        "/api/orders/%2e%2e/metrics",
        "/api/orders/%2E%2e/metrics",
        "/api/orders/.%2e/metrics",
        "/api/orders/./x",
        "/api/orders/%2e",
        "/api/orders/..",
        "/api/orders/../",
        "/api/orders//x",
        "//api/orders",
        "/api/orders%2fmetrics",
        "/api/orders/%2F..%2Fmetrics",
        "/api/orders/%5c..%5cmetrics",
        "/api/orders\\..\\metrics",
        "/api/orders/%00",
        "/api/orders/%0d%0aX-Injected:%201",
        "/api/orders/%zz",
        "/api/orders/%4",
        "/api/orders/%ff%fe",
        "/api/orders/é",
        "/api/orders/a b",
        "/api/orders/<script>",
        "api/orders",
        "*",
        "http://evil.example/api/orders",
        "/" + "a" * 3000,
    ],
)
def test_paths_without_a_canonical_form_are_refused(raw: str) -> None:
    with pytest.raises(PathRefusedError):
        canonical_path(raw)


_SEGMENT_PIECES = st.sampled_from(
    [
        "a",
        "orders",
        "api",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2f",
        "%5C",
        "%41",
        "%c3%a9",
        "%",
        "~",
        ";",
        "",
    ]
)
_RAW_PATHS = st.lists(
    st.lists(_SEGMENT_PIECES | st.text(max_size=3), max_size=3).map("".join), max_size=6
).map(lambda segments: "/" + "/".join(segments))


@given(_RAW_PATHS)
def test_the_canonical_form_is_a_fixed_point_without_dot_or_empty_segments(raw: str) -> None:
    try:
        canonical = canonical_path(raw)
    except PathRefusedError:
        return
    assert canonical_path(canonical) == canonical
    segments = canonical.split("/")[1:]
    assert canonical == "/" or all(s not in ("", ".", "..") for s in segments)
    assert decoded_path(canonical).count("/") == canonical.count("/")  # no slash was encoded


def test_query_strings_with_bytes_that_need_escaping_are_refused() -> None:
    assert check_query("a=1&b=%20x&c[]=2") == "a=1&b=%20x&c[]=2"
    for bad in ("a=1 2", "a=%zz", "a=\x00", "a=#x", "a=é"):
        with pytest.raises(PathRefusedError):
            check_query(bad)


@pytest.mark.parametrize(
    ("host", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.20.0.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("[::1]", True),
        ("localhost", True),
        ("order-service", True),
        ("order-service.shop.svc.cluster.local", True),
        ("payments.internal", True),
        ("shop.example.com", False),
        ("93.184.216.34", False),
    ],
)
def test_internal_hosts(host: str, internal: bool) -> None:
    assert is_internal_host(host) is internal


INSTANCE = "http://127.0.0.1:18001"


@pytest.mark.parametrize(
    ("location", "public_base", "expected"),
    [
        ("/api/orders/1", None, "/api/orders/1"),  # relative: unchanged
        ("http://127.0.0.1:18001/orders/1?x=1", None, "/api/orders/1?x=1"),
        (
            "http://127.0.0.1:18001/orders",
            "https://shop.example.com/",
            "https://shop.example.com/api/orders",
        ),
        ("http://127.0.0.1:18002/payments", None, None),  # another internal address
        ("http://10.0.0.9/x", None, None),
        ("http://evil.example/x", None, "http://evil.example/x"),  # external: the backend's word
        ("http://127.0.0.1:notaport/x", None, None),
    ],
)
def test_public_location(location: str, public_base: str | None, expected: str | None) -> None:
    assert (
        public_location(location, instance_url=INSTANCE, prefix="/api", public_base_url=public_base)
        == expected
    )


def test_a_redirect_to_an_internal_address_is_refused_and_other_answers_lose_the_header() -> None:
    leak = [("Location", "http://10.0.0.9:8001/orders/1"), ("X-Kept", "1")]
    with pytest.raises(UpstreamError) as caught:
        public_headers(307, leak, instance_url=INSTANCE, prefix="/api", public_base_url=None)
    assert caught.value.status == 502
    kept = public_headers(201, leak, instance_url=INSTANCE, prefix="/api", public_base_url=None)
    assert kept == [("X-Kept", "1")]
