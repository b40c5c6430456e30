"""Coalesced acks: one `basic.ack(multiple=True)` for a run of handled messages.

Every ack is a frame the client writes and the broker processes; under load they are a good
share of a consumer's and of RabbitMQ's work (bench/bench_orders.py: RabbitMQ's CPU per order
fell by half with acks out of the picture). AMQP lets one ack settle every delivery of the
channel up to a tag (`multiple=True`), so the window below sends one for a run of messages.

A delivery is recorded when it arrives (`delivered`), before it waits for a handler slot, and
settled in one of two ways:
- `ack(message)` (handled, or forwarded to a retry tier or the DLQ): it waits for the flush.
  A flush acks the longest run of handled deliveries from the oldest unsettled one, with the
  newest tag of the run and `multiple=True`; a handled message behind one still being handled
  waits for it (a multiple ack must not settle a message nobody finished);
- `settled(message)`: the caller nacked or rejected it itself (sent at once); it leaves the
  window, so a later multiple ack does not cover it (frames on a channel keep their order).

The flush runs `linger` seconds after the first ack that waits, or at once when
`max_pending` handled messages wait (the prefetch window must keep room for deliveries), and
at stop (`flush_all`). An ack sent late is safe: the effect and its outbox row were committed
before `ack` was called; a crash before the flush redelivers the messages and the consumers'
inbox absorbs them (at least once, as everywhere).

Delivery tags belong to a channel: when the robust connection reopens the channel, the
window starts over; what the old channel held is redelivered by the broker.
"""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError

from shop_common.logging import get_logger

log = get_logger(__name__)


class AckWindow:
    """Unsettled deliveries of one consumer, in delivery order, acked in runs."""

    def __init__(self, *, linger: float = 0.02, max_pending: int = 8) -> None:
        if linger < 0 or max_pending < 1:
            raise ValueError("linger must be >= 0 and max_pending >= 1")
        self._linger = linger
        self._max_pending = max_pending
        self._channel: object | None = None
        # delivery tag → the message once handled (None while it is being handled); dicts keep
        # insertion order, and tags arrive in increasing order on a channel.
        self._unsettled: dict[int, AbstractIncomingMessage | None] = {}
        self._handled = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Handled messages whose ack has not been sent yet."""
        return self._handled

    def delivered(self, message: AbstractIncomingMessage) -> None:
        """Record a delivery as it arrives (before it waits for a handler slot)."""
        channel = _channel_of(message)
        if channel is None or message.delivery_tag is None:
            return
        if channel is not self._channel:
            self._restart(channel)
        self._unsettled[message.delivery_tag] = None

    def settled(self, message: AbstractIncomingMessage) -> None:
        """The caller settled the message itself (nack, reject): it leaves the window, and the
        handled messages it held back may go."""
        if not self._owns(message):
            return
        if self._unsettled.pop(message.delivery_tag, None) is not None:  # type: ignore[arg-type]
            self._handled -= 1
        if self._handled:
            self._schedule()

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """The message is done: ack it with the next flush."""
        if not self._owns(message):
            return  # its channel is gone: the broker redelivers it
        tag = message.delivery_tag
        assert tag is not None
        if self._unsettled[tag] is None:
            self._unsettled[tag] = message
            self._handled += 1
        if self._handled >= self._max_pending or self._linger == 0:
            await self._flush()
        else:
            self._schedule()

    def _owns(self, message: AbstractIncomingMessage) -> bool:
        return (
            _channel_of(message) is self._channel
            and self._channel is not None
            and message.delivery_tag in self._unsettled
        )

    def _schedule(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._linger, self._flush_later)

    async def flush_all(self) -> None:
        """Send what waits (at stop, once nothing is in flight)."""
        await asyncio.gather(*self._flushing, return_exceptions=True)
        await self._flush()

    def _flush_later(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        last: AbstractIncomingMessage | None = None
        while self._unsettled:
            tag, message = next(iter(self._unsettled.items()))
            if message is None:
                break  # still being handled: the run stops here
            del self._unsettled[tag]
            self._handled -= 1
            last = message
        # Handled messages behind one still in hand wait for it (its ack or settle flushes
        # them), unless there are max_pending of them: those are acked one by one, so a slow
        # message does not fill the prefetch window and stall the queue.
        behind: list[AbstractIncomingMessage] = []
        if self._handled >= self._max_pending:
            behind = [m for m in self._unsettled.values() if m is not None]
            for message in behind:
                del self._unsettled[message.delivery_tag]  # type: ignore[arg-type]
            self._handled = 0
        try:
            if last is not None:
                await last.ack(multiple=True)
            for message in behind:
                await message.ack()
        except Exception as error:  # the channel closed meanwhile: the broker redelivers
            log.warning("ack_failed", error=repr(error))

    def _restart(self, channel: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._channel = channel
        self._unsettled.clear()
        self._handled = 0


def _channel_of(message: AbstractIncomingMessage) -> object | None:
    """The channel the message came on, None once it is closed."""
    try:
        return message.channel
    except ChannelInvalidStateError:
        return None
