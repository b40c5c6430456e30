"""The response cache's store in Redis: entries with a TTL, and a set per scope and per tag so that
a user's entries can be evicted together. Redis errors surface as StoreUnavailableError; the
rules (keys, Cache-Control, ETags) are gateway.domain.cache_rules, the step that uses this store
is gateway.service_layer.cache_step.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.domain.cache_rules import CachedResponse
from gateway.domain.errors import StoreUnavailableError


class RedisResponseCache:
    """Redis store with a per-scope index so a user's entries can be evicted together."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gw:rc:") -> None:
        self._client = client
        self.prefix = prefix

    def _index(self, scope: str) -> str:
        return f"{self.prefix}idx:{scope}"

    async def get(self, key: str) -> CachedResponse | None:
        """The stored response or None."""
        try:
            raw = await self._client.get(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(repr(exc)) from exc
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
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(key, response.dumps(), px=ttl_ms)
                for index in (scope, *tags):
                    pipe.sadd(self._index(index), key)
                    pipe.pexpire(self._index(index), ttl_ms * 2)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(repr(exc)) from exc

    async def evict_scope(self, scope: str) -> int:
        """Delete every entry of one scope (a user.updated event calls this); returns how many."""
        index = self._index(scope)
        try:
            keys = await self._client.smembers(index)
            if not keys:
                return 0
            deleted = int(await self._client.delete(*keys))
            await self._client.delete(index)
        except (RedisError, OSError) as exc:  # the consumer retries the event
            raise StoreUnavailableError(repr(exc)) from exc
        return deleted
