"""Waiting in tests for something to become true: polling with a deadline, never a fixed sleep.

    await eventually(lambda: queue.depth == 0, what="the queue drained")
    await eventually(order_is_paid, timeout=60, what="order PAID")   # an async predicate

The predicate may be a plain function or a coroutine function. It is checked at once, then
every `interval` seconds; after `timeout` seconds an AssertionError names `what` and the time.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - this IS the deadline (a poll, not one await)
    interval: float = 0.01,
    what: str = "condition",
) -> None:
    """Return as soon as check() is true; AssertionError once timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
