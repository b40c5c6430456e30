"""Deadlines on the monotonic clock and a per-call timeout bounded by them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Deadline:
    """An absolute point on a monotonic clock that a whole operation must finish by."""

    __slots__ = ("_clock", "at")

    def __init__(self, at: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.at = at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """A deadline seconds from now."""
        return cls(clock() + seconds, clock=clock)

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - self._clock())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._clock() >= self.at


async def with_timeout(
    awaitable: Awaitable[T],
    timeout: float | None = None,  # noqa: ASYNC109 - combined with the deadline below
    *,
    deadline: Deadline | None = None,
) -> T:
    """Await with the tighter of timeout and the deadline; TimeoutError when it runs out."""
    limit = timeout
    if deadline is not None:
        left = deadline.remaining()
        limit = left if limit is None else min(limit, left)
    if limit is not None and limit <= 0:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise TimeoutError("deadline already expired")
    async with asyncio.timeout(limit):
        return await awaitable
