"""Header transforms for proxying: hop-by-hop removal, forwarding headers, gateway-owned identity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.domain.forwarding import ClientAddress

# RFC 9110 §7.6.1 connection-specific fields, plus those a proxy must never pass on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set only by the gateway from a verified token; any client-supplied copy is dropped.
IDENTITY_HEADERS = frozenset({"x-user-id", "x-user-roles"})


# Replaced by the gateway on the way up (host: aiohttp sets the backend's; the id: the gateway's).
# X-Forwarded-Prefix is the gateway's word on the path prefix it stripped, never the client's.
_REPLACED_UPSTREAM = (
    HOP_BY_HOP
    | IDENTITY_HEADERS
    | {
        "host",
        "x-request-id",
        "content-length",
        "x-forwarded-prefix",
        "x-forwarded-for",
    }
)
# What a client says about the way its request came: believed only from a trusted proxy
# (gateway.domain.forwarding); from anyone else replaced by the gateway's own view of the connection.
FORWARDING_HEADERS = frozenset({"x-forwarded-proto", "x-forwarded-host", "forwarded"})
_REPLACED_UNTRUSTED = _REPLACED_UPSTREAM | FORWARDING_HEADERS


def _connection_named(headers: Iterable[tuple[str, str]]) -> set[str]:
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def strip_hop_by_hop(
    headers: Iterable[tuple[str, str]], also: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Drop hop-by-hop fields, every field the Connection header names, and the names in `also`."""
    pairs = list(headers)
    named = _connection_named(pairs)
    drop = HOP_BY_HOP | also | named if named else HOP_BY_HOP | also
    return [(n, v) for n, v in pairs if n.lower() not in drop]


def upstream_request_headers(
    headers: Sequence[tuple[str, str]],
    *,
    client_ip: str | ClientAddress,
    scheme: str,
    host: str,
    request_id: str,
    user_id: str | None,
    roles: Iterable[str],
    prefix: str = "",
) -> list[tuple[str, str]]:
    """Headers to send upstream: cleaned, X-Forwarded-* set, identity set by the gateway.

    client_ip is the client as gateway.domain.forwarding resolved it (a bare string means a peer that
    is not a trusted proxy). X-Forwarded-For upstream is that one address, never a chain a
    client wrote: the backends read it as the client. X-Forwarded-Proto, X-Forwarded-Host and
    Forwarded pass on only from a trusted proxy (it terminated TLS, it saw the public host);
    from any other peer they are dropped and the gateway's own scheme and host are sent.

    prefix is the path prefix the route strips (e.g. "/api"), sent as X-Forwarded-Prefix so that
    a backend builds links (Location) that work through the gateway.
    """
    trusted = isinstance(client_ip, ClientAddress) and client_ip.peer_trusted
    base = _REPLACED_UPSTREAM if trusted else _REPLACED_UNTRUSTED
    named = _connection_named(headers)
    drop = base | named if named else base
    cleaned: list[tuple[str, str]] = []
    has_proto = has_host = False
    for name, value in headers:  # one pass: this runs on every proxied request
        lower = name.lower()
        if lower in drop:
            continue
        has_proto = has_proto or lower == "x-forwarded-proto"
        has_host = has_host or lower == "x-forwarded-host"
        cleaned.append((name, value))
    cleaned.append(("X-Forwarded-For", str(client_ip)))
    if not has_proto:
        cleaned.append(("X-Forwarded-Proto", scheme))
    if not has_host:
        cleaned.append(("X-Forwarded-Host", host))
    cleaned.append(("X-Request-ID", request_id))
    if prefix:
        cleaned.append(("X-Forwarded-Prefix", prefix))
    if user_id is not None:
        cleaned.append(("X-User-ID", user_id))
        cleaned.append(("X-User-Roles", ",".join(roles)))
    return cleaned
