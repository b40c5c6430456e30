"""Response-cache rules: the key (method, path, sorted query, caller scope), the tags an entry is
indexed under for eviction, Cache-Control on both sides, ETags, and the stored form of an entry.
One user's response never reaches another: the caller's scope is part of the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.domain.routes import RouteMatch


def _directives(cache_control: str | None) -> set[str]:
    if not cache_control:
        return set()
    return {
        part.split("=", 1)[0].strip().lower() for part in cache_control.split(",") if part.strip()
    }


def auth_scope(user_id: str | None) -> str:
    """The part of the key that separates callers: the user id, or 'anon'."""
    return f"user:{user_id}" if user_id is not None else "anon"


def cache_key(
    prefix: str, method: str, path: str, query: Iterable[tuple[str, str]], scope: str
) -> str:
    """Key = method + path + sorted query + auth scope (hashed, scope kept readable for eviction)."""
    canonical = json.dumps([method.upper(), path, sorted(query)], separators=(",", ":"))
    return f"{prefix}{scope}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def may_serve_from_cache(request_cache_control: str | None) -> bool:
    """A client's no-store or no-cache means: go to the backend."""
    return not _directives(request_cache_control) & {"no-store", "no-cache"}


def may_store(
    status: int,
    request_cache_control: str | None,
    response_headers: Mapping[str, str],
    *,
    authenticated: bool,
) -> bool:
    """Only 200s without no-store (either side), no-cache or Set-Cookie; private only in a user scope."""
    if status != 200 or "set-cookie" in {k.lower() for k in response_headers}:
        return False
    if "no-store" in _directives(request_cache_control):
        return False
    response_cc = _directives(
        next((v for k, v in response_headers.items() if k.lower() == "cache-control"), None)
    )
    if response_cc & {"no-store", "no-cache"}:
        return False
    return not ("private" in response_cc and not authenticated)


def strong_etag(body: bytes) -> str:
    """An ETag from the body's hash, used when the backend sends none."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match comparison (weak, RFC 9110 §13.1.2): '*' or any listed tag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


@dataclass(frozen=True)
class CachedResponse:
    """What is stored: status, headers to replay, body, ETag."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str

    def dumps(self) -> str:
        """JSON text for Redis."""
        return json.dumps(
            {
                "status": self.status,
                "headers": self.headers,
                "body": base64.b64encode(self.body).decode(),
                "etag": self.etag,
            }
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> CachedResponse:
        """Inverse of dumps."""
        data = json.loads(raw)
        return cls(
            status=int(data["status"]),
            headers=tuple((str(k), str(v)) for k, v in data["headers"]),
            body=base64.b64decode(data["body"]),
            etag=str(data["etag"]),
        )


def resource_tags(match: RouteMatch) -> tuple[str, ...]:
    """Tags an entry is also indexed under: /api/users/<id>... → "resource:user:<id>"."""
    if match.route.backend != "user-service":
        return ()
    user_id = match.params.get("user_id") or match.rest.split("/", 1)[0]
    return (f"resource:user:{user_id}",) if user_id.isdigit() else ()


def user_tags(user_id: int) -> tuple[str, ...]:
    """Everything cached for or about a user: their own scope and responses about them."""
    return (auth_scope(str(user_id)), f"resource:user:{user_id}")
