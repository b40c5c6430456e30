"""Write-behind whose queue lives in Redis: queued writes survive a crash or a restart.

The queue of one writer (its `name`) is three keys with one hash tag, so the Lua scripts
that move writes between them run on a Redis Cluster too:
``<prefix>:{<name>}:values`` (hash key → newest value), ``…:order`` (sorted set key → write
sequence: coalescing moves a rewritten key to the back) and ``…:inflight`` (the batch being
flushed, as a list key, value, key, value…). A batch stays in `inflight` until the store
confirms it, so a writer that restarts with the same name flushes it again first
(at-least-once: the store must accept a repeated batch).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from shop_common.cache.levels import LayeredCache
from shop_common.cache.metrics import CACHE_ERRORS
from shop_common.cache.redis import RedisClient
from shop_common.cache.serializers import JsonSerializer, Serializer
from shop_common.cache.writebehind import (
    CACHE_WRITE_BEHIND_DEPTH,
    WRITE_BEHIND_RETRY,
    Batch,
    WriteBehindError,
    check_write_behind_retry,
    finish_flusher,
)
from shop_common.logging import get_logger
from shop_common.resilience.retry import RetryPolicy, retry_call

__all__ = ["RedisWriteBehind"]

_log = get_logger(__name__)

_ENQUEUE = """
local seq = redis.call('incr', KEYS[3])
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], seq, ARGV[1])
return redis.call('zcard', KEYS[2])
"""
_TAKE = """
if redis.call('exists', KEYS[3]) == 0 and tonumber(ARGV[1]) > 0 then
  local keys = redis.call('zrange', KEYS[2], 0, tonumber(ARGV[1]) - 1)
  for _, k in ipairs(keys) do
    redis.call('rpush', KEYS[3], k, redis.call('hget', KEYS[1], k))
    redis.call('hdel', KEYS[1], k)
  end
  if #keys > 0 then redis.call('zrem', KEYS[2], unpack(keys)) end
end
return redis.call('lrange', KEYS[3], 0, -1)
"""


class RedisWriteBehind:
    """Like WriteBehind (coalescing, batch/interval flush, ordered retries, backpressure, flush
    on stop), with the queue in Redis. One flusher per name at a time."""

    def __init__(
        self,
        client: RedisClient,
        name: str,
        store: Callable[[Batch], Awaitable[None]],
        cache: LayeredCache | None = None,
        *,
        prefix: str = "write-behind",
        serializer: Serializer | None = None,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_pending: int = 10_000,
        retry: RetryPolicy = WRITE_BEHIND_RETRY,
    ) -> None:
        if batch_size < 1 or max_pending < batch_size or flush_interval <= 0:
            raise ValueError("need batch_size >= 1, max_pending >= batch_size, flush_interval > 0")
        if "{" in name or "}" in name:
            raise ValueError("name must be free of '{' and '}' (it becomes the hash tag)")
        self.client = client
        self.name = name
        self.store = store
        self.cache = cache
        self.serializer: Serializer = serializer or JsonSerializer()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.retry = check_write_behind_retry(retry)
        base = f"{prefix}:{{{name}}}"
        self.keys = [f"{base}:values", f"{base}:order", f"{base}:seq", f"{base}:inflight"]
        self._enqueue = client.register_script(_ENQUEUE)
        self._take = client.register_script(_TAKE)
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._m_depth = CACHE_WRITE_BEHIND_DEPTH.labels(name)
        self._m_errors = CACHE_ERRORS.labels(name, "write_behind_flush")

    async def depth(self) -> int:
        """Writes not yet confirmed by the store (queued + in the batch being flushed)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.keys[1])
        pipe.llen(self.keys[3])
        queued, inflight = await pipe.execute()
        return int(queued) + int(inflight) // 2

    def start(self) -> None:
        """Start the flusher (it first re-sends a batch a previous run left unconfirmed)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"write-behind:{self.name}")

    async def write(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Cache value now and queue it in Redis (waits while max_pending keys are queued).

        Raises the Redis error when the queue cannot be written: a durable write-behind must
        not pretend to have accepted a write it could lose.
        """
        if self._stopping:
            raise WriteBehindError(f"{self.name} is stopping; write refused")
        if self.cache is not None:
            await self.cache.set(key, value, ttl)
        while await self.client.zcard(self.keys[1]) >= self.max_pending:
            if not await self.client.hexists(self.keys[0], key):
                self._room.clear()
                self._wake.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._room.wait()
                continue
            break
        depth = await self._enqueue(keys=self.keys[:3], args=[key, self.serializer.dumps(value)])
        self._m_depth.set(int(depth))
        if int(depth) >= self.batch_size:
            self._wake.set()

    async def stop(self, grace: float | None = 30.0) -> None:
        """Flush everything queued, then stop; WriteBehindError if the store stays down."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        self._task = None
        if not await finish_flusher(task, grace):
            raise WriteBehindError(f"{self.name}: writes left in Redis for the next run")

    async def _run(self) -> None:
        take = 0  # first only the batch a previous run left unconfirmed, then batch_size
        while True:
            # A failed step is retried (self.retry); each confirmed batch starts a fresh backoff.
            if await retry_call(self.retry, self._flush_step, take):
                continue  # a backlog drains without waiting for the interval
            if self._stopping and take:
                return  # queue and in-flight batch are empty
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                    # that lands as the event fires, and a cancelled flusher must stop.
                    async with asyncio.timeout(self.flush_interval):
                        await self._wake.wait()
            take = self.batch_size

    async def _flush_step(self, take: int) -> bool:
        """Move up to take writes into the in-flight batch and store it; False when none."""
        values, order, _, inflight = self.keys
        self._wake.clear()  # before taking: a wake-up that comes during the flush is kept
        try:
            flat = await self._take(keys=[values, order, inflight], args=[take])
            if not flat:
                return False
            batch = [
                (k.decode() if isinstance(k, bytes) else str(k), self.serializer.loads(v))
                for k, v in zip(flat[::2], flat[1::2], strict=True)
            ]
            await self.store(batch)
            await self.client.delete(inflight)
            self._m_depth.set(await self.depth())
            self._room.set()
            return True
        except Exception as exc:
            self._m_errors.inc()
            _log.warning("write_behind_flush_failed", name=self.name, error=repr(exc))
            raise
