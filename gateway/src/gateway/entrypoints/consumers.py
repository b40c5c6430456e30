"""The gateway's consumers: response-cache eviction, typed handlers over
shop_common.messaging.handlers, on two queues of one connection.

- gateway.user-changes (users exchange): user.updated or user.deleted evicts what is cached for
  and about that user;
- gateway.catalog-changes (catalog exchange): product.price_changed evicts the product's entries
  and every listing page (a page shows prices); stock.changed evicts the product's entries (no
  cached listing shows stock, and GET /products/{sku}/stock is never cached).

The listener runs in the background: the gateway serves while the broker is down (entries still
expire by their TTL) and starts consuming once it connects. One gateway instance's consumer
evicts for all of them: the entries live in the one Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from aio_pika.abc import AbstractRobustConnection
from shop_common.logging import get_logger
from shop_common.messaging import SHOP_TOPOLOGY, Consumer, connect
from shop_common.messaging.connection import AMQP_CONNECT_RETRY
from shop_common.messaging.events import (
    ProductPriceChanged,
    StockChanged,
    UserChanged,
    UserDeleted,
)
from shop_common.messaging.handlers import Handlers, Incoming
from shop_common.messaging.monitor import MessagingMonitor

from gateway.service_layer.cache_step import CacheStep

QUEUE = "gateway.user-changes"
CATALOG_QUEUE = "gateway.catalog-changes"
STOP_SECONDS = 3.0
_log = get_logger(__name__)

# A user.updated or user.deleted evicts the user's entries (a Redis error is retried by the
# consumer); user.created has nothing cached yet.
user_changes = Handlers[CacheStep](QUEUE)
user_changes.ignores("user.created")
catalog_changes = Handlers[CacheStep](CATALOG_QUEUE)
# The gateway serves without the broker, so it keeps trying to connect until it is stopped.
EVENTS_CONNECT = replace(AMQP_CONNECT_RETRY, max_attempts=None)


@user_changes.handles("user.updated")
async def user_updated(event: UserChanged, step: CacheStep, msg: Incoming) -> int:
    return await step.evict_user(event.user_id)


@user_changes.handles("user.deleted")
async def user_deleted(event: UserDeleted, step: CacheStep, msg: Incoming) -> int:
    return await step.evict_user(event.user_id)


@catalog_changes.handles("product.price_changed")
async def price_changed(event: ProductPriceChanged, step: CacheStep, msg: Incoming) -> int:
    return await step.evict_product(event.sku, listings=True)


@catalog_changes.handles("stock.changed")
async def stock_changed(event: StockChanged, step: CacheStep, msg: Incoming) -> int:
    return await step.evict_product(event.sku, listings=False)


class EvictionListener:
    """Connects (retrying), consumes both queues with the eviction handlers, stops cleanly."""

    def __init__(self, amqp_url: str, step: CacheStep) -> None:
        self._url = amqp_url
        self._step = step
        self._task: asyncio.Task[None] | None = None
        self._connection: AbstractRobustConnection | None = None
        self._consumers: list[Consumer] = []
        self._monitor: MessagingMonitor | None = None
        self.started = asyncio.Event()

    def start(self) -> None:
        """Begin connecting in the background."""
        self._task = asyncio.create_task(self._run(), name="gateway-cache-events")
        self._task.add_done_callback(_log_failure)

    async def _run(self) -> None:
        self._connection = await connect(self._url, retry=EVENTS_CONNECT, name="gateway")
        for handlers in (user_changes, catalog_changes):
            consumer = Consumer(self._connection, handlers.queue, handlers.bind(self._step))
            await consumer.start()
            self._consumers.append(consumer)
        # shop_queue_depth of the queues, their retry tiers and their DLQs.
        self._monitor = MessagingMonitor(
            self._connection,
            SHOP_TOPOLOGY.monitored_queues([QUEUE, CATALOG_QUEUE]),
            interval=15.0,
        )
        await self._monitor.start()
        self.started.set()

    async def stop(self) -> None:
        """Stop consuming (in-flight evictions finish) and close the connection."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        # Bounded: a broker that is gone must not hold the gateway's shutdown.
        if self._monitor is not None:
            await self._monitor.stop(grace=STOP_SECONDS)
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_SECONDS):
                    await consumer.stop()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_SECONDS):
                    await self._connection.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("cache_events_listener_failed", error=repr(task.exception()))
