"""The one retry policy: data (`RetryPolicy`) run by tenacity, for every place that retries.
The module is long because its docstring lists every place that retries, with its policy.

Two ways to run a policy, both tenacity's:

- `retry_call(policy, fn, ...)`: tenacity's `AsyncRetrying` around one call. Use it wherever a
  loop retries a call.
- `backoff_delays(policy, ...)`: the policy's pauses, one per retry it allows. Use it for the
  loops that cannot be one call: a background loop that retries until it is stopped and resets
  its backoff on a success of its own (a reconnect whose session lasts for hours), or a poll
  that does something else between attempts. Start a new iterator to reset the backoff.

The backoff arithmetic exists only here, in `RetryPolicy.wait()`: tenacity's
`wait_exponential` (initial_backoff * multiplier**n, capped at max_backoff) under a jitter
draw, uniform in [(1 - jitter) * that, that]: jitter 1.0 is full jitter, 0.5 "equal jitter",
0.0 none (a fixed schedule). Both ways share the stop rule that makes retries safe under a
deadline: a retry whose pause would use up the time left (the Deadline, or max_elapsed) is not
taken. max_attempts=None means no limit on attempts: the loop ends when it is stopped
(cancelled) or its time runs out.

Places that retry, and their policies (attempts, initial → max pause, jitter):

- gateway `Backend` (gateway.adapters.backends.UPSTREAM_RETRY, via retry_call after a fast first
  attempt): 1 + the route's `retries` for idempotent requests, else 1; 0.02 s (setting
  retry_initial_backoff_seconds) → 0.5 s, full jitter; on connection errors, timeouts and
  502/503/504 answers; never past the route's deadline. Each attempt picks an instance anew.
- order service's user lookup (order_service.adapters.users, via resilient_call → retry_call):
  setting user_lookup_attempts (2); 0.05 → 0.2 s, full jitter; default_is_failure; inside the
  request's deadline.
- `WriteBehind` flush (cache.writebehind.WRITE_BEHIND_RETRY, via retry_call; the catalog's view
  counters): until the store takes the batch; 0.05 → 2 s, no jitter; any error.
- `RedisWriteBehind` flush (examples/caching, the same WRITE_BEHIND_RETRY, via retry_call):
  likewise, a fresh backoff after each confirmed batch.
- cache coherence subscriber (cache.coherence.COHERENCE_RECONNECT, via backoff_delays): until
  closed; 0.05 → 2 s, no jitter; reset by every confirmed subscription.
- Redis load-lock wait (cache.stampede.LOAD_LOCK_POLL, via backoff_delays): polls until the
  caller's lock_wait runs out; 0.005 → 0.05 s, no jitter.
- Consul registration keeper (discovery.consul.CONSUL_REGISTER_RETRY, via backoff_delays):
  until deregistered; 0.5 → 30 s, equal jitter; reset by a successful heartbeat or
  registration. `ServiceRegistration` (discovery.registration) has no loop of its own: it
  leaves the retrying to this keeper.
- Consul watch (discovery.consul.CONSUL_WATCH_RETRY, via backoff_delays): until closed;
  1 → 30 s, equal jitter; reset by an answer.
- AMQP connect (messaging.connection.AMQP_CONNECT_RETRY, via retry_call): 30 attempts (callers
  may pass fewer); 0.2 → 5 s, no jitter; on OSError and AMQPConnectionError. The gateway's
  user-events listener connects with gateway.entrypoints.consumers.USER_EVENTS_CONNECT: no limit.
- user service's LISTEN hub (user_service.adapters.update_hub.UPDATE_HUB_RECONNECT, via
  backoff_delays): until stopped; a constant 0.5 s, no jitter.

Retries that are not loops of ours, so not policies here: the gRPC user client's retries
(gRPC's own, from its service config), the consumers' delayed redelivery (broker-side retry
tiers, messaging.topology) and the breaker's growing open time (breaker.open_backoff_multiplier).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.wait import wait_exponential

from shop_common.observability.propagation import span_event
from shop_common.resilience.classify import default_is_failure
from shop_common.resilience.timeouts import Deadline

if TYPE_CHECKING:
    from tenacity import BaseRetrying

T = TypeVar("T")


def any_exception(exc: BaseException) -> bool:
    """A `retry_on` for loops that retry whatever went wrong (still only Exceptions)."""
    return True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times, how long apart and on what a call is retried.

    max_attempts None: no limit (the loop runs until stopped, max_elapsed or the deadline).
    jitter: the part of each pause that is random (1.0 full jitter, 0.0 a fixed schedule).
    """

    max_attempts: int | None = 3
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0
    max_elapsed: float | None = None
    retry_on: Callable[[BaseException], bool] = field(default=default_is_failure)
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if (
            (self.max_attempts is not None and self.max_attempts < 1)
            or self.initial_backoff < 0
            or self.multiplier < 1
            or not 0.0 <= self.jitter <= 1.0
        ):
            raise ValueError(
                "max_attempts >= 1 (or None), initial_backoff >= 0, multiplier >= 1 and"
                " 0 <= jitter <= 1 required"
            )

    @property
    def gives_up(self) -> bool:
        """Whether it ever stops retrying by itself (a loop that must run until stopped needs
        a policy that does not: no max_attempts, no max_elapsed)."""
        return self.max_attempts is not None or self.max_elapsed is not None

    def wait(self, rng: random.Random | None = None) -> wait_exponential:
        """The policy's pauses as a tenacity wait strategy (the pause after attempt n)."""
        return _JitteredExponential(self, rng)

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """The pause before retry retry_number + 1 (0: the pause after the first attempt)."""
        return self.wait(rng)(_state_after(retry_number + 1))


class _JitteredExponential(wait_exponential):
    """tenacity's exponential ceiling, then a draw uniform in [(1 - jitter) * ceiling, ceiling]."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None) -> None:
        super().__init__(
            multiplier=policy.initial_backoff, max=policy.max_backoff, exp_base=policy.multiplier
        )
        self._jitter = policy.jitter
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = super().__call__(retry_state)
        if not self._jitter:
            return ceiling
        return (self._rng or random).uniform(ceiling * (1.0 - self._jitter), ceiling)


def _state_after(attempt_number: int) -> RetryCallState:
    """A tenacity call state as it stands after attempt attempt_number (all a wait reads)."""
    state = RetryCallState(cast("BaseRetrying", None), None, (), {})
    state.attempt_number = attempt_number
    return state


def _time_left(
    policy: RetryPolicy, deadline: Deadline | None, started: float, clock: Callable[[], float]
) -> float:
    """Seconds left for pauses and attempts: the tighter of max_elapsed and the deadline."""
    left = math.inf
    if policy.max_elapsed is not None:
        left = policy.max_elapsed - (clock() - started)
    if deadline is not None:
        left = min(left, deadline.remaining())
    return left


async def retry_call(
    policy: RetryPolicy,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    deadline: Deadline | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    first_error: BaseException | None = None,
    before_retry: Callable[[BaseException], None] | None = None,
    **kwargs: Any,
) -> T:
    """Await fn until it succeeds, a non-retryable error, attempts, max_elapsed or deadline;
    the last error is raised as it is (never wrapped).

    first_error: the error of an attempt the caller already made itself (a fast path that
    skips tenacity's set-up when the first attempt succeeds); it counts as attempt 1 and the
    retries follow as if this call had made it. before_retry(error) runs when a retry has
    been decided, before its pause (e.g. to release what the failed attempt holds).
    """
    started = clock()

    def must_stop(state: RetryCallState) -> bool:
        if policy.max_attempts is not None and state.attempt_number >= policy.max_attempts:
            return True
        # tenacity computes the backoff before it asks whether to stop.
        left = _time_left(policy, deadline, started, clock)
        return state.upcoming_sleep >= left  # no time would be left for another attempt

    def on_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        span_event(
            "retry",
            {
                "retry.attempt": state.attempt_number,
                "retry.delay_s": state.upcoming_sleep,
                "retry.error": type(error).__name__ if error is not None else "",
            },
        )
        if before_retry is not None and error is not None:
            before_retry(error)

    retrying = AsyncRetrying(
        stop=must_stop,
        wait=policy.wait(rng),
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and policy.retry_on(exc)),
        before_sleep=on_retry,
        sleep=sleep,
        reraise=True,
    )
    call = fn if first_error is None else _replaying(first_error, fn)
    result: T = await retrying(call, *args, **kwargs)
    return result


def _replaying(
    error: BaseException, fn: Callable[..., Awaitable[T]]
) -> Callable[..., Awaitable[T]]:
    """fn, whose first call raises error (the attempt the caller made) instead of running."""
    replay = [error]

    async def call(*args: Any, **kwargs: Any) -> T:
        if replay:
            raise replay.pop()
        return await fn(*args, **kwargs)

    return call


def backoff_delays(
    policy: RetryPolicy,
    *,
    deadline: Deadline | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """The pauses of a loop that retries by hand: one per retry the policy allows.

    Ends when the policy allows no more: after max_attempts - 1 pauses (never, for
    max_attempts=None), or when the next pause would use up the time left (max_elapsed
    counted from this call, or the deadline). A new iterator starts the backoff afresh.
    """
    return _delays(policy, policy.wait(rng), deadline, clock(), clock)


def _delays(
    policy: RetryPolicy,
    wait: wait_exponential,
    deadline: Deadline | None,
    started: float,
    clock: Callable[[], float],
) -> Iterator[float]:
    state = _state_after(1)
    while policy.max_attempts is None or state.attempt_number < policy.max_attempts:
        pause = wait(state)
        if pause >= _time_left(policy, deadline, started, clock):
            return
        yield pause
        state.attempt_number += 1
