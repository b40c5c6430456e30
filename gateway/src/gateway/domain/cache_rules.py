"""Response-cache rules: the key (method, path, sorted query, the route's vary headers, caller
scope), the tags an entry is indexed under for eviction, Cache-Control and Vary, ETags, and the
stored form of an entry. One user's response never reaches another: the caller's scope is part
of the key; a response that varies by a header the key does not hold is never stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
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


def vary_values(
    names: Sequence[str], headers: Iterable[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """The request's values of the vary headers (lower-case names), each field's repeats joined
    and its whitespace collapsed: `Accept: a/b,  c/d` and `Accept: a/b` + `Accept: c/d` agree."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for name, value in headers:
        values = found.get(name.lower())
        if values is not None:
            values.append(" ".join(value.split()))
    return tuple((name, ",".join(v.strip() for v in found[name])) for name in names)


def cache_key(
    prefix: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    scope: str,
    vary: Iterable[tuple[str, str]] = (),
) -> str:
    """Key = method + path + sorted query + vary header values + auth scope (hashed, the scope
    kept readable for eviction)."""
    canonical = json.dumps(
        [method.upper(), path, sorted(query), sorted(vary)], separators=(",", ":")
    )
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
    keyed_by: Iterable[str] = (),
) -> bool:
    """Only 200s without no-store (either side), no-cache or Set-Cookie; private only in a user
    scope; a Vary only on headers the key holds (`keyed_by`, lower-case)."""
    if status != 200 or "set-cookie" in {k.lower() for k in response_headers}:
        return False
    vary = {
        name.strip().lower()
        for k, v in response_headers.items()
        if k.lower() == "vary"
        for name in v.split(",")
        if name.strip()
    }
    if not vary <= set(keyed_by):  # includes "*": it varies by what no key can hold
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


PRODUCT_LISTING_TAG = "resource:products"


def resource_tags(match: RouteMatch) -> tuple[str, ...]:
    """Tags an entry is also indexed under: /api/users/<id>... → "resource:user:<id>";
    /api/products (a listing page) → "resource:products", /api/products/<sku>... →
    "resource:product:<sku>"."""
    backend = match.route.backend
    if backend == "catalog-service":
        sku = match.params.get("sku") or match.rest.split("/", 1)[0]
        return product_tags(sku) if sku else (PRODUCT_LISTING_TAG,)
    if backend != "user-service":
        return ()
    user_id = match.params.get("user_id") or match.rest.split("/", 1)[0]
    return (f"resource:user:{user_id}",) if user_id.isdigit() else ()


def product_tags(sku: str) -> tuple[str, ...]:
    """Everything cached about one product (its page, its image...)."""
    return (f"resource:product:{sku}",)


def user_tags(user_id: int) -> tuple[str, ...]:
    """Everything cached for or about a user: their own scope and responses about them."""
    return (auth_scope(str(user_id)), f"resource:user:{user_id}")
