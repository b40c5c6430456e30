"""Cross-instance L1 coherence over Redis pub/sub (single Redis or Cluster).

Every set or delete publishes the keys on a channel; every other instance evicts them from its
L1. Pub/sub is at-most-once, so anything that may have missed a message flushes the whole L1:
a dropped or silent connection (no PONG within 2 x ping_interval) and every (re)subscription.
The short L1 TTL is the last backstop. The subscriber reconnects until closed, with the pauses
of COHERENCE_RECONNECT, afresh after every confirmed subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.asyncio.cluster import RedisCluster

from shop_common.cache.redis import RedisClient
from shop_common.logging import get_logger
from shop_common.observability.propagation import untraced
from shop_common.resilience.retry import RetryPolicy, backoff_delays

__all__ = ["COHERENCE_RECONNECT", "CoherenceChannel"]

_log = get_logger(__name__)
COHERENCE_RECONNECT = RetryPolicy(
    max_attempts=None, initial_backoff=0.05, max_backoff=2.0, jitter=0.0
)


class CoherenceChannel:
    """Publishes invalidations and runs the subscriber that applies other instances' ones."""

    def __init__(
        self,
        client: RedisClient,
        channel: str,
        *,
        on_keys: Callable[[list[str]], None],
        on_flush: Callable[[], None],
        on_error: Callable[[str], None] = lambda operation: None,
        ping_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.ping_interval = ping_interval
        self._on_keys = on_keys
        self._on_flush = on_flush
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._attempted = asyncio.Event()  # the first subscription attempt has an outcome
        self.subscriptions = 0  # how many times a subscription was confirmed

    async def start(self, wait: float = 5.0) -> None:
        """Run the subscriber; wait (at most `wait` s) until its first attempt succeeds or fails.

        Never raises: with Redis down the subscriber keeps retrying in the background.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"coherence:{self.channel}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._attempted.wait()

    async def close(self) -> None:
        """Stop the subscriber."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected.clear()

    async def publish_keys(self, keys: Iterable[str]) -> None:
        """Tell the other instances to evict keys (raises on Redis errors)."""
        await self._publish({"o": self.origin, "k": list(keys)})

    async def publish_flush(self) -> None:
        """Tell the other instances to drop their whole L1."""
        await self._publish({"o": self.origin, "all": True})

    async def _publish(self, message: dict[str, Any]) -> None:
        await self.client.publish(self.channel, orjson.dumps(message))

    def _apply(self, data: bytes | str) -> None:
        message = orjson.loads(data)
        if not isinstance(message, dict) or message.get("o") == self.origin:
            return
        if message.get("all"):
            self._on_flush()
        else:
            self._on_keys([str(k) for k in message.get("k", [])])

    async def _run(self) -> None:
        with untraced():  # the subscription and its pings start no trace
            await self._subscribe_forever()

    async def _subscribe_forever(self) -> None:
        pauses = backoff_delays(COHERENCE_RECONNECT)
        while True:
            pubsub = None
            try:
                if isinstance(self.client, RedisCluster):
                    await self.client.initialize()  # its pubsub needs the slot map (idempotent)
                pubsub = self.client.pubsub(ignore_subscribe_messages=False)
                await pubsub.subscribe(self.channel)
                last_seen = last_ping = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=self.ping_interval / 2)
                    now = time.monotonic()
                    if message is not None:
                        last_seen = now
                        kind = message["type"]
                        if kind == "subscribe":
                            # A new connection: whatever was published before it is lost to us.
                            self._on_flush()
                            self.subscriptions += 1
                            self.connected.set()
                            self._attempted.set()
                            pauses = backoff_delays(COHERENCE_RECONNECT)
                        elif kind == "message":
                            self._apply(message["data"])
                    if now - last_seen > 2 * self.ping_interval:
                        raise ConnectionError("no reply from Redis on the invalidation channel")
                    if now - last_ping >= self.ping_interval:
                        last_ping = now
                        await pubsub.ping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._attempted.set()
                self.connected.clear()
                self._on_flush()
                self._on_error("coherence")
                _log.warning("cache_coherence_lost", channel=self.channel, error=repr(exc))
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
            await asyncio.sleep(next(pauses))
