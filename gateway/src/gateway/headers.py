"""Header transforms for proxying: hop-by-hop removal, forwarding headers, gateway-owned identity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    }
)


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
    client_ip: str,
    scheme: str,
    host: str,
    request_id: str,
    user_id: str | None,
    roles: Iterable[str],
    prefix: str = "",
) -> list[tuple[str, str]]:
    """Headers to send upstream: cleaned, X-Forwarded-* appended, identity set by the gateway.

    prefix is the path prefix the route strips (e.g. "/api"), sent as X-Forwarded-Prefix so that
    a backend builds links (Location) that work through the gateway.
    """
    named = _connection_named(headers)
    drop = _REPLACED_UPSTREAM | named if named else _REPLACED_UPSTREAM
    cleaned: list[tuple[str, str]] = []
    prior_for: list[str] = []
    has_proto = has_host = False
    for name, value in headers:  # one pass: this runs on every proxied request
        lower = name.lower()
        if lower in drop:
            continue
        if lower == "x-forwarded-for":
            prior_for.append(value)
            continue
        has_proto = has_proto or lower == "x-forwarded-proto"
        has_host = has_host or lower == "x-forwarded-host"
        cleaned.append((name, value))
    prior = ", ".join(prior_for)
    cleaned.append(("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip))
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
