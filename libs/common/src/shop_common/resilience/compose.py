"""One call through breaker → retry → per-attempt timeout, all inside an overall deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shop_common.resilience.breaker import CircuitBreaker
from shop_common.resilience.retry import RetryPolicy, retry_call
from shop_common.resilience.timeouts import Deadline, with_timeout

T = TypeVar("T")


async def resilient_call(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    breaker: CircuitBreaker | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - per-attempt limit, applied inside
    deadline: Deadline | None = None,
    **kwargs: Any,
) -> T:
    """Order: the breaker outside the retries (an open breaker stops every attempt), each
    attempt bounded by min(timeout, deadline), the retries never sleeping past the deadline."""

    async def one_attempt() -> T:
        return await with_timeout(fn(*args, **kwargs), timeout, deadline=deadline)

    async def attempts() -> T:
        if retry is None:
            return await one_attempt()
        return await retry_call(retry, one_attempt, deadline=deadline)

    if breaker is None:
        return await attempts()
    return await breaker.call(attempts)
