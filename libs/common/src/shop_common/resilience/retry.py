"""Retries with exponential backoff and full jitter that never overrun a deadline.

The loop is tenacity's (`AsyncRetrying`); what this module adds is the policy as data and the
stop rule that makes retries safe under a deadline: a retry whose backoff would use up the time
left (the call's Deadline, or `max_elapsed`) is not taken, and the last error is raised instead.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from shop_common.resilience.classify import default_is_failure
from shop_common.resilience.timeouts import Deadline

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times, how long apart and on what a call is retried."""

    max_attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0
    max_elapsed: float | None = None
    retry_on: Callable[[BaseException], bool] = field(default=default_is_failure)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_backoff < 0 or self.multiplier < 1:
            raise ValueError("max_attempts >= 1, initial_backoff >= 0, multiplier >= 1 required")

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max_backoff, initial * multiplier**retry_number)]."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier**retry_number)
        return (rng or random).uniform(0.0, ceiling)


async def retry_call(
    policy: RetryPolicy,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    deadline: Deadline | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **kwargs: Any,
) -> T:
    """Await fn until it succeeds, a non-retryable error, attempts, max_elapsed or deadline;
    the last error is raised as it is (never wrapped)."""
    started = clock()

    def must_stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        budget = float("inf")
        if policy.max_elapsed is not None:
            budget = policy.max_elapsed - (clock() - started)
        if deadline is not None:
            budget = min(budget, deadline.remaining())
        # tenacity computes the backoff before it asks whether to stop.
        return state.upcoming_sleep >= budget  # no time would be left for another attempt

    retrying = AsyncRetrying(
        stop=must_stop,
        wait=lambda state: policy.backoff(state.attempt_number - 1),
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and policy.retry_on(exc)),
        sleep=sleep,
        reraise=True,
    )
    result: T = await retrying(fn, *args, **kwargs)
    return result
