"""Following an order live: its state now, then each change, until it rests or time is up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from web_service.domain.orders import OrderState
from web_service.service_layer.ports import OrderReader


class OrderWatch:
    """`async for state in watch.follow(token, order_id)`: the first state, then every change.

    The order service publishes no per-order feed, so the watch reads the order every
    `interval` seconds with the caller's own token (the order service checks ownership each
    time) and yields only changes. It ends after a resting state (see domain.orders) or after
    `max_seconds`; a Refused or Unavailable read ends it with that error.
    """

    def __init__(
        self,
        reader: OrderReader,
        *,
        interval: float,
        max_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._interval = interval
        self._max_seconds = max_seconds
        self._sleep = sleep
        self._clock = clock

    async def follow(self, token: str, order_id: str) -> AsyncIterator[OrderState]:
        """The order's states as they change (see the class docstring)."""
        deadline = self._clock() + self._max_seconds
        last: OrderState | None = None
        while True:
            state = await self._reader.order_state(token, order_id)
            if last is None or (state.status, state.updated_at) != (last.status, last.updated_at):
                last = state
                yield state
            if state.resting or self._clock() + self._interval > deadline:
                return
            await self._sleep(self._interval)
