"""Response cache for GETs in Redis, keyed by caller scope so one user's response never reaches another."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis


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


class ResponseCache:
    """Redis store with a per-scope index so a user's entries can be evicted together."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gw:rc:") -> None:
        self._client = client
        self.prefix = prefix

    def _index(self, scope: str) -> str:
        return f"{self.prefix}idx:{scope}"

    async def get(self, key: str) -> CachedResponse | None:
        """The stored response or None."""
        raw = await self._client.get(key)
        return CachedResponse.loads(raw) if raw is not None else None

    async def put(
        self,
        key: str,
        scope: str,
        response: CachedResponse,
        ttl_seconds: float,
        tags: Iterable[str] = (),
    ) -> None:
        """Store with a TTL and remember the key under its scope and each tag (evict_scope(tag))."""
        ttl_ms = max(1, int(ttl_seconds * 1000))
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(key, response.dumps(), px=ttl_ms)
            for index in (scope, *tags):
                pipe.sadd(self._index(index), key)
                pipe.pexpire(self._index(index), ttl_ms * 2)
            await pipe.execute()

    async def evict_scope(self, scope: str) -> int:
        """Delete every entry of one scope (a user.updated event calls this); returns how many."""
        index = self._index(scope)
        keys = await self._client.smembers(index)
        if not keys:
            return 0
        deleted = int(await self._client.delete(*keys))
        await self._client.delete(index)
        return deleted
