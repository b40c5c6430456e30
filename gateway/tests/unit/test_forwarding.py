"""gateway.domain.forwarding: the client is the peer unless the peer is a trusted proxy."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.domain.forwarding import (
    ClientAddress,
    client_address,
    parse_address,
    parse_networks,
    resolve,
)
from gateway.settings import Settings

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


def _h(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(n.lower().encode(), v.encode()) for n, v in pairs]


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # No trusted proxies configured: the peer, whatever it sends.
        ("198.51.100.1", _h(("X-Forwarded-For", "1.2.3.4")), "198.51.100.1"),
        # An untrusted peer's X-Forwarded-For is ignored (the spoof).
        ("127.0.0.1", _h(("X-Forwarded-For", "1.2.3.4")), "127.0.0.1"),
        # A trusted proxy: the rightmost address it vouches for.
        ("10.0.0.2", _h(("X-Forwarded-For", "203.0.113.5")), "203.0.113.5"),
        # A client-written prefix left of the real client is not believed.
        ("10.0.0.2", _h(("X-Forwarded-For", "6.6.6.6, 203.0.113.5")), "203.0.113.5"),
        # Several trusted hops are skipped from the right.
        ("10.0.0.2", _h(("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.9.9.9")), "203.0.113.5"),
        # Several header lines form one list, in order.
        (
            "10.0.0.2",
            _h(("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")),
            "203.0.113.9",
        ),
        # A trusted proxy that sent nothing: the proxy is the client.
        ("10.0.0.2", [], "10.0.0.2"),
        # Every hop trusted: the leftmost.
        ("10.0.0.2", _h(("X-Forwarded-For", "10.1.1.1, 10.2.2.2")), "10.1.1.1"),
        # Garbage where an address should be: the walk stops at the last hop we vouch for.
        ("10.0.0.2", _h(("X-Forwarded-For", "203.0.113.5, bogus")), "10.0.0.2"),
        ("10.0.0.2", _h(("X-Forwarded-For", "bogus, 10.3.3.3")), "10.3.3.3"),
        # Ports and IPv6 spellings.
        ("10.0.0.2", _h(("X-Forwarded-For", "203.0.113.5:4711")), "203.0.113.5"),
        ("10.0.0.2", _h(("X-Forwarded-For", "[2001:db8::1]:4711")), "2001:db8::1"),
        ("2001:db8:ffff::2", _h(("X-Forwarded-For", "2001:db8::7")), "2001:db8::7"),
        ("::ffff:10.0.0.2", _h(("X-Forwarded-For", "203.0.113.5")), "203.0.113.5"),
        # Forwarded is not read when the proxies write X-Forwarded-For.
        ("10.0.0.2", _h(("Forwarded", "for=6.6.6.6")), "10.0.0.2"),
    ],
)
def test_resolve_x_forwarded_for(peer: str, headers: Any, client: str) -> None:
    networks = () if peer == "198.51.100.1" else PROXIES
    assert resolve(peer, headers, networks).address == client


@pytest.mark.parametrize(
    ("value", "client"),
    [
        ("for=203.0.113.5", "203.0.113.5"),
        ('for="203.0.113.5:4711";proto=https', "203.0.113.5"),
        ('for="[2001:db8::1]:4711"', "2001:db8::1"),
        ("for=6.6.6.6, for=203.0.113.5;by=10.0.0.2", "203.0.113.5"),
        ("for=6.6.6.6, for=unknown", "10.0.0.2"),
        ("for=_hidden", "10.0.0.2"),
        ("proto=https", "10.0.0.2"),
        ("FOR=203.0.113.5", "203.0.113.5"),
    ],
)
def test_resolve_rfc7239_forwarded(value: str, client: str) -> None:
    headers = _h(("Forwarded", value), ("X-Forwarded-For", "6.6.6.6"))
    assert resolve("10.0.0.2", headers, PROXIES, "forwarded").address == client


def test_an_untrusted_peer_is_marked_so_and_a_trusted_one_too() -> None:
    assert resolve("127.0.0.1", _h(("X-Forwarded-For", "1.2.3.4")), PROXIES) == ClientAddress(
        "127.0.0.1", "127.0.0.1", peer_trusted=False
    )
    assert resolve("10.0.0.2", _h(("X-Forwarded-For", "1.2.3.4")), PROXIES) == ClientAddress(
        "1.2.3.4", "10.0.0.2", peer_trusted=True
    )


def test_a_long_chain_is_walked_only_so_far() -> None:
    chain = ", ".join(["10.0.0.5"] * 1000)
    assert resolve("10.0.0.2", _h(("X-Forwarded-For", chain)), PROXIES).address == "10.0.0.5"


@pytest.mark.parametrize("text", ["unknown", "_hidden", "", "1.2.3", "1.2.3.4.5", "[::1", "x:y:z"])
def test_parse_address_refuses_non_addresses(text: str) -> None:
    assert parse_address(text) is None


def test_client_address_reads_the_scope_once_and_handles_a_missing_peer() -> None:
    settings = Settings(trusted_proxies="127.0.0.1/32")  # type: ignore[arg-type]
    scope: dict[str, Any] = {
        "client": ("127.0.0.1", 5),
        "headers": _h(("X-Forwarded-For", "1.2.3.4")),
    }
    assert client_address(scope, settings).address == "1.2.3.4"
    scope["headers"] = []
    assert client_address(scope, settings).address == "1.2.3.4"  # kept in the scope
    assert settings.client_address({"headers": []}).address == "unknown"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("10.0.0.1/8", ("10.0.0.0/8",)),
        ("192.0.2.7, ::1", ("192.0.2.7/32", "::1/128")),
        ('["10.1.0.0/16"]', ("10.1.0.0/16",)),
    ],
)
def test_trusted_proxies_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", raw)
    assert tuple(str(n) for n in Settings().trusted_proxies) == expected


def test_a_bad_trusted_proxy_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        Settings()
