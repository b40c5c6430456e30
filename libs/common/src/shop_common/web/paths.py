"""A request's path as the client sent it, behind a gateway that stripped a prefix.

The gateway strips a route's prefix (`/api/orders/7` reaches the order service as `/orders/7`)
and says so in X-Forwarded-Prefix. A service builds the URLs it hands out (Location, a problem's
`instance`) with that prefix, so they name the public path, not the service's own layout.
"""

from __future__ import annotations

import re

from starlette.requests import Request

# Segments of unreserved characters, no dot segments: a prefix is never a way to climb a path.
_SAFE_PREFIX = re.compile(r"^(?:/(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]+)+$")


def forwarded_prefix(request: Request) -> str:
    """The path prefix a proxy stripped (X-Forwarded-Prefix, e.g. "/api"), if it is sane."""
    prefix = request.headers.get("x-forwarded-prefix", "").rstrip("/")
    return prefix if _SAFE_PREFIX.match(prefix) else ""


def public_path(request: Request) -> str:
    """The path the client asked for: the forwarded prefix, then this service's path."""
    return forwarded_prefix(request) + request.url.path
