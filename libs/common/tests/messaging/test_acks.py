"""AckWindow's rules, on stand-in messages (pure logic; test_messaging_batch.py runs it against
RabbitMQ): a run of handled deliveries goes in one multiple ack, never past one still in hand."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aio_pika.exceptions import ChannelInvalidStateError
from shop_common.messaging.acks import AckWindow
from shop_testing.wait import eventually


@dataclass(eq=False)
class Channel:
    closed: bool = False
    acks: list[tuple[int, bool]] = field(default_factory=list)


@dataclass(eq=False)
class Message:
    """What AckWindow uses of an aio-pika incoming message: channel, delivery_tag, ack."""

    on: Channel
    delivery_tag: int

    @property
    def channel(self) -> Channel:
        if self.on.closed:
            raise ChannelInvalidStateError
        return self.on

    async def ack(self, multiple: bool = False) -> None:
        self.on.acks.append((self.delivery_tag, multiple))


def deliver(window: AckWindow, channel: Channel, tags: range) -> list[Message]:
    messages = [Message(channel, tag) for tag in tags]
    for message in messages:
        window.delivered(message)  # type: ignore[arg-type]
    return messages


async def test_a_run_of_handled_messages_goes_in_one_multiple_ack() -> None:
    window, channel = AckWindow(linger=60, max_pending=4), Channel()
    messages = deliver(window, channel, range(1, 5))
    for message in messages[:3]:
        await window.ack(message)  # type: ignore[arg-type]
    assert channel.acks == []  # waiting for the linger or for max_pending
    await window.ack(messages[3])  # type: ignore[arg-type]
    assert channel.acks == [(4, True)]
    assert window.waiting == 0


async def test_the_run_stops_at_a_message_still_being_handled() -> None:
    window, channel = AckWindow(linger=60, max_pending=8), Channel()
    first, second, third = deliver(window, channel, range(1, 4))
    await window.ack(second)  # type: ignore[arg-type]
    await window.ack(third)  # type: ignore[arg-type]
    await window.flush_all()
    assert channel.acks == []  # 1 is in hand: a multiple ack of 3 would settle it too
    await window.ack(first)  # type: ignore[arg-type]
    await window.flush_all()
    assert channel.acks == [(3, True)]


async def test_max_pending_behind_a_slow_message_are_acked_one_by_one() -> None:
    window, channel = AckWindow(linger=60, max_pending=2), Channel()
    slow, *fast = deliver(window, channel, range(1, 4))
    for message in fast:
        await window.ack(message)  # type: ignore[arg-type]
    assert channel.acks == [(2, False), (3, False)]  # the prefetch window does not fill up
    await window.ack(slow)  # type: ignore[arg-type]
    await window.flush_all()
    assert channel.acks[-1] == (1, True)


async def test_a_settled_message_leaves_the_window_and_frees_the_run() -> None:
    window, channel = AckWindow(linger=0.01, max_pending=8), Channel()
    rejected, handled = deliver(window, channel, range(1, 3))
    await window.ack(handled)  # type: ignore[arg-type]
    window.settled(rejected)  # type: ignore[arg-type]

    async def flushed() -> bool:
        return bool(channel.acks)

    await eventually(flushed, timeout=10, interval=0.005, what="the flush after the linger")
    assert channel.acks == [(2, True)]


async def test_the_linger_flushes_what_waits() -> None:
    window, channel = AckWindow(linger=0.01, max_pending=8), Channel()
    (message,) = deliver(window, channel, range(7, 8))
    await window.ack(message)  # type: ignore[arg-type]

    async def flushed() -> bool:
        return bool(channel.acks)

    await eventually(flushed, timeout=10, interval=0.005, what="the flush after the linger")
    assert channel.acks == [(7, True)]


async def test_a_new_channel_starts_the_window_over() -> None:
    window, old, new = AckWindow(linger=60, max_pending=8), Channel(), Channel()
    (stale,) = deliver(window, old, range(5, 6))
    old.closed = True  # the connection dropped; the broker redelivers on the new channel
    (fresh,) = deliver(window, new, range(1, 2))
    await window.ack(stale)  # type: ignore[arg-type]
    await window.ack(fresh)  # type: ignore[arg-type]
    await window.flush_all()
    assert (old.acks, new.acks) == ([], [(1, True)])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="linger"):
        AckWindow(linger=-1)
    with pytest.raises(ValueError, match="max_pending"):
        AckWindow(max_pending=0)
