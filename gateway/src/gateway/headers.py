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


def _connection_named(headers: Sequence[tuple[str, str]]) -> set[str]:
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def strip_hop_by_hop(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop hop-by-hop fields, including every field the Connection header names."""
    drop = HOP_BY_HOP | _connection_named(headers)
    return [(n, v) for n, v in headers if n.lower() not in drop]


def upstream_request_headers(
    headers: Sequence[tuple[str, str]],
    *,
    client_ip: str,
    scheme: str,
    host: str,
    request_id: str,
    user_id: str | None,
    roles: Iterable[str],
) -> list[tuple[str, str]]:
    """Headers to send upstream: cleaned, X-Forwarded-* appended, identity set by the gateway."""
    cleaned = [
        (n, v)
        for n, v in strip_hop_by_hop(headers)
        if n.lower() not in IDENTITY_HEADERS
        and n.lower() not in {"host", "x-request-id", "content-length"}
    ]
    prior_for = ", ".join(v for n, v in cleaned if n.lower() == "x-forwarded-for")
    cleaned = [(n, v) for n, v in cleaned if n.lower() != "x-forwarded-for"]
    cleaned.append(("X-Forwarded-For", f"{prior_for}, {client_ip}" if prior_for else client_ip))
    if not any(n.lower() == "x-forwarded-proto" for n, _ in cleaned):
        cleaned.append(("X-Forwarded-Proto", scheme))
    if not any(n.lower() == "x-forwarded-host" for n, _ in cleaned):
        cleaned.append(("X-Forwarded-Host", host))
    cleaned.append(("X-Request-ID", request_id))
    if user_id is not None:
        cleaned.append(("X-User-ID", user_id))
        cleaned.append(("X-User-Roles", ",".join(roles)))
    return cleaned
