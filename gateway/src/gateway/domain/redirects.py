"""Location and Content-Location in a backend's answer, as the client may see them.

A backend knows only its own address (`http://10.0.3.7:8001/orders/42`), which must not leave the
internal network. So before an answer goes out:
- a relative reference (`/api/orders/42`) passes unchanged: the client resolves it against the
  URL it asked for, and the backend built it with X-Forwarded-Prefix;
- an absolute URL naming the backend instance that answered is rewritten to the public URL of
  the same resource: the route's prefix added back, under the configured PUBLIC_BASE_URL (or
  path-absolute when none is configured; the request's Host is never used);
- an absolute URL naming any other internal address (loopback, private, link-local, a
  single-label or cluster-internal host name) is refused: a redirect carrying one becomes 502,
  and on any other answer the header is dropped (a 201 keeps its body: nothing is lost);
- any other absolute URL (an external site) passes unchanged.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from shop_common.logging import get_logger

from gateway.domain.errors import UpstreamError

_log = get_logger(__name__)
LOCATION_HEADERS = frozenset({"location", "content-location"})
_INTERNAL_SUFFIXES = (".local", ".internal", ".localdomain", ".svc", ".cluster.local", ".consul")


def is_internal_host(host: str) -> bool:
    """True for an address or name that only makes sense inside the system's network."""
    host = host.strip("[]").rstrip(".").lower()
    if not host:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host or host == "localhost" or host.endswith(_INTERNAL_SUFFIXES)
    return not address.is_global


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), host, port


def public_location(
    value: str, *, instance_url: str, prefix: str, public_base_url: str | None
) -> str | None:
    """The header value the client gets; None when it names an internal address."""
    parts = urlsplit(value.strip())
    if not parts.scheme and not parts.netloc:
        return value
    try:
        same_instance = _origin(value.strip()) == _origin(instance_url)
        host = parts.hostname or ""
    except ValueError:  # a port that is not a number, an unbalanced "[": not a URL we can vouch for
        return None
    if same_instance:
        path = prefix + (parts.path or "/")
        relative = urlunsplit(("", "", path, parts.query, parts.fragment))
        return public_base_url.rstrip("/") + relative if public_base_url else relative
    return None if is_internal_host(host) else value


def public_headers(
    status: int,
    headers: list[tuple[str, str]],
    *,
    instance_url: str,
    prefix: str,
    public_base_url: str | None,
) -> list[tuple[str, str]]:
    """headers with every Location/Content-Location made public (see the module docstring)."""
    if not any(name.lower() in LOCATION_HEADERS for name, _ in headers):
        return headers
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() not in LOCATION_HEADERS:
            out.append((name, value))
            continue
        public = public_location(
            value, instance_url=instance_url, prefix=prefix, public_base_url=public_base_url
        )
        if public is not None:
            out.append((name, public))
            continue
        _log.warning("internal_address_refused", header=name, status=status)
        if 300 <= status < 400 and name.lower() == "location":
            raise UpstreamError(502, "the backend redirected to an internal address")
    return out
