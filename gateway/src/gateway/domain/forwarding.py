"""Who the client is: the peer address, or what trusted proxies in front of the gateway say it is.

The gateway is the edge unless TRUSTED_PROXIES names the proxies in front of it. Forwarding
headers (X-Forwarded-For, or RFC 7239 Forwarded when FORWARDED_HEADER=forwarded) are read only
when the TCP peer is one of those proxies, and then from the right: each entry was appended by
the hop to its left's right, so entries are believed only while the hop that wrote them is
trusted. The first address that is not a trusted proxy is the client. Anything left of it is
whatever the client chose to send, and is ignored.

uvicorn must not rewrite scope["client"] itself (proxy_headers=False in `python -m gateway`):
its default trusts 127.0.0.1, so any local process could pick its own address.

`client_address(scope, settings)` is the one resolver; the rate limit identity, the login
throttle and the upstream X-Forwarded-* headers all use it. Its answer is kept in the scope,
so a request resolves once however many steps ask.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]
UNKNOWN = "unknown"
# A chain longer than this is not a real deployment's; the walk stops there (bounded work).
MAX_HOPS = 32
_SCOPE_KEY = "gateway.client_address"
Scope = MutableMapping[str, Any]  # an ASGI scope (the domain imports no web framework)


class ForwardingSettings(Protocol):
    """The two settings the resolver reads (gateway.settings.Settings has both)."""

    @property
    def trusted_proxies(self) -> Sequence[IPNetwork]: ...

    @property
    def forwarded_header(self) -> ForwardedHeader: ...


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """The resolved client, the TCP peer, and whether the peer is a trusted proxy."""

    address: str
    peer: str
    peer_trusted: bool = False

    def __str__(self) -> str:
        return self.address


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs or bare addresses ("10.0.0.0/8", "192.0.2.7", "::1"); host bits are allowed."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def parse_address(value: str) -> IPAddress | None:
    """One forwarded address: "192.0.2.1", "192.0.2.1:4711", "[2001:db8::1]:4711", quoted or
    not; None for anything else (RFC 7239 "unknown", obfuscated "_hidden", garbage)."""
    text = value.strip().strip('"').strip()
    if text.startswith("["):
        text, closed, _ = text[1:].partition("]")
        if not closed:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def _x_forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    entries: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":
            entries.extend(value.decode("latin-1").split(","))
    return entries


def _forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The for= parameter of each RFC 7239 element, in order; an element without one is ''."""
    entries: list[str] = []
    for name, value in headers:
        if name.lower() != b"forwarded":
            continue
        for element in value.decode("latin-1").split(","):
            found = ""
            for pair in element.split(";"):
                key, _, val = pair.partition("=")
                if key.strip().lower() == "for":
                    found = val
            entries.append(found)
    return entries


def resolve(
    peer: str,
    headers: Iterable[tuple[bytes, bytes]],
    networks: Sequence[IPNetwork],
    header: ForwardedHeader = "x-forwarded-for",
) -> ClientAddress:
    """The client behind `peer`: walk the forwarding header from the right past trusted hops.

    An entry that is not an address (unknown, obfuscated, garbage) ends the walk: the hop that
    wrote it is the last one we can vouch for, so it stands as the client.
    """
    if not networks:
        return ClientAddress(peer, peer)
    peer_ip = parse_address(peer)
    if peer_ip is None or not _trusted(peer_ip, networks):
        return ClientAddress(peer, peer)
    chain = _forwarded_for(headers) if header == "forwarded" else _x_forwarded_for(headers)
    client = peer_ip
    for entry in reversed(chain[-MAX_HOPS:]):
        hop = parse_address(entry)
        if hop is None:
            break
        client = hop
        if not _trusted(hop, networks):
            break
    return ClientAddress(str(client), peer, peer_trusted=True)


def client_address(scope: Scope, settings: ForwardingSettings) -> ClientAddress:
    """The request's client as the gateway sees it (resolved once, then kept in the scope)."""
    known = scope.get(_SCOPE_KEY)
    if isinstance(known, ClientAddress):
        return known
    peer_pair = scope.get("client")
    peer = str(peer_pair[0]) if peer_pair else UNKNOWN
    found = resolve(
        peer, scope.get("headers", ()), settings.trusted_proxies, settings.forwarded_header
    )
    scope[_SCOPE_KEY] = found
    return found
