"""A consumer that hands runs of messages to one call: one transaction for many events.

Some effects are cheaper by the dozen: a confirmation is one UPDATE whether it names one order or
forty, and a database commit (a WAL flush) costs the same for one row or many. BatchConsumer is
the Consumer (messaging/consumer.py: retry tiers, DLQ, acks in runs) with one addition: messages
whose event type is in `batch_types` are collected (up to `max_batch`, or for `linger` seconds
after the first) and handed together to `batch_handler`. The others take the one-at-a-time path
as before. A message that finds the consumer quiet (no batch running, none for `linger`) starts
its batch at once, so batching costs no latency when there is no load to batch.

The contract of a batch handler:
- it receives the decoded items, in delivery order, each with the trace context of its consume
  span (`item.traced()`: what the handler writes for an item, an outbox row for instance, is
  written in it, so the trace goes on from that message);
- it applies them all or none (one transaction), and returns the items it left alone: those
  take the one-at-a-time path (a line that cannot be valid, for instance, goes to the DLQ there);
- if it raises, nothing was applied: every item of the batch takes the one-at-a-time path, with
  its retry tiers and DLQ. The handlers are idempotent (inbox), as everywhere, so an item that
  the batch and then the single path both see has its effect once.

One batch runs at a time; the next gathers meanwhile (prefetch bounds it). A batched message
counts as in flight from its arrival to its settlement, so stop() waits for it: once the
consumer is cancelled, what was gathered still runs when its linger ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from opentelemetry import context as otel_context
from prometheus_client import Histogram

from shop_common.logging import get_logger
from shop_common.messaging.consumer import MESSAGES_CONSUMED, Consumer
from shop_common.messaging.context import message_context
from shop_common.messaging.events import EventEnvelope
from shop_common.messaging.handlers import Incoming
from shop_common.messaging.outcomes import Handler
from shop_common.messaging.topology import SHOP_TOPOLOGY, Topology
from shop_common.observability.propagation import (
    current_trace_context,
    in_trace_context,
    untraced,
)

log = get_logger(__name__)

BATCH_SIZE = Histogram(
    "shop_consumer_batch_messages",
    "Messages handed to one batch handler call, by queue.",
    ["queue"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200),
)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch: its envelope and delivery, and the trace it continues."""

    incoming: Incoming
    message: AbstractIncomingMessage
    context: otel_context.Context

    @property
    def envelope(self) -> EventEnvelope:
        """The message's envelope (decoded and its payload validated)."""
        return self.incoming.envelope

    @contextlib.contextmanager
    def traced(self) -> Iterator[None]:
        """Run what is done for this item in the trace of its consume span, with its request
        id bound (what it writes to the outbox carries both on)."""
        message = self.message
        with (
            in_trace_context(self.context),
            message_context(message.headers or {}, message.message_id or ""),
        ):
            yield


BatchHandler = Callable[[Sequence[BatchItem]], Awaitable[Sequence[BatchItem]]]


class BatchConsumer(Consumer):
    """A Consumer that hands messages of `batch_types` to `batch_handler` in runs."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue_name: str,
        handler: Handler,
        *,
        batch_handler: BatchHandler,
        batch_types: frozenset[str],
        max_batch: int = 64,
        linger: float = 0.02,
        prefetch: int = 128,
        concurrency: int = 16,
        max_attempts: int = 5,
        topology: Topology = SHOP_TOPOLOGY,
    ) -> None:
        if max_batch < 1 or linger < 0:
            raise ValueError("max_batch must be >= 1 and linger >= 0")
        super().__init__(
            connection,
            queue_name,
            handler,
            prefetch=prefetch,
            concurrency=concurrency,
            max_attempts=max_attempts,
            topology=topology,
        )
        self._batch_handler = batch_handler
        self._batch_types = batch_types
        self._max_batch = max_batch
        self._linger = linger
        self._pending: list[BatchItem] = []
        self._timer: asyncio.TimerHandle | None = None
        self._one_batch = asyncio.Lock()
        self._batches: set[asyncio.Task[None]] = set()
        self._last_end = 0.0  # the event loop's time when the last batch ended

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if message.type not in self._batch_types:
            await super()._on_message(message)
            return
        self._acks.delivered(message)
        self._began(1)
        decoded = await self._decode(message)
        if decoded is None:  # dead-lettered: it is settled
            self._done(1)
            return
        item = BatchItem(Incoming(*decoded), message, current_trace_context())
        self._pending.append(item)
        loop = asyncio.get_running_loop()
        quiet = not self._batches and loop.time() - self._last_end >= self._linger
        if len(self._pending) >= self._max_batch or quiet:
            self._start_batch()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self._start_batch)

    def _start_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        if self._pending:  # more than one batch's worth arrived: the rest goes next
            self._timer = asyncio.get_running_loop().call_later(0, self._start_batch)
        with untraced():  # the batch belongs to no one message's trace (items carry theirs)
            task = asyncio.get_running_loop().create_task(self._run_batch(batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _run_batch(self, batch: list[BatchItem]) -> None:
        async with self._one_batch:
            BATCH_SIZE.labels(self._spec.name).observe(len(batch))
            started = time.perf_counter()
            try:
                left = await self._batch_handler(batch)
            except Exception as error:  # nothing applied: each item goes its own way
                log.warning(
                    "batch_failed_one_at_a_time",
                    queue=self._spec.name,
                    size=len(batch),
                    error=repr(error),
                )
                left = batch
            left_ids = {id(item) for item in left}
            handled = [item for item in batch if id(item) not in left_ids]
            for item in handled:
                await self._acks.ack(item.message)
            MESSAGES_CONSUMED.labels(self._spec.name, "ack").inc(len(handled))
            log.info(
                "batch_handled",
                queue=self._spec.name,
                size=len(batch),
                handled=len(handled),
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            for item in left:
                with item.traced():
                    await self._process(item.message)
            self._done(len(batch))
            self._last_end = asyncio.get_running_loop().time()


__all__ = ("BATCH_SIZE", "BatchConsumer", "BatchHandler", "BatchItem")
