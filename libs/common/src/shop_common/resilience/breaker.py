"""Async circuit breaker: count-based window, exact half-open permits, injectable clock.

The module is long because the three states, their transitions and the half-open permits are
one state machine whose correctness (tests/unit/test_breaker_stateful.py) depends on every
transition being visible in one place."""

from __future__ import annotations

import contextvars
import enum
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ParamSpec, TypeVar

from shop_common.logging import get_logger
from shop_common.observability.propagation import span_event
from shop_common.resilience.classify import default_is_failure
from shop_common.resilience.metrics import (
    BREAKER_CALLS,
    BREAKER_FAILURE_RATE,
    BREAKER_REJECTIONS,
    BREAKER_STATE,
)

__all__ = [
    "BreakerConfig",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "breaker_for",
    "default_is_failure",
]

P = ParamSpec("P")
T = TypeVar("T")
_log = get_logger(__name__)


class CircuitState(enum.StrEnum):
    """States of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Tripping, recovery and trial knobs of a CircuitBreaker."""

    consecutive_failures: int | None = 5
    failure_rate_threshold: float | None = 0.5
    window_size: int = 20
    minimum_calls: int = 10
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float = 1.0
    recovery_timeout: float = 10.0
    half_open_max_calls: int = 1
    successes_to_close: int = 1
    open_backoff_multiplier: float = 1.0
    max_recovery_timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.window_size < 1 or self.minimum_calls < 1:
            raise ValueError("window_size and minimum_calls must be >= 1")
        if self.minimum_calls > self.window_size:
            raise ValueError("minimum_calls cannot exceed window_size")
        if self.half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be >= 1")
        if not 1 <= self.successes_to_close <= self.half_open_max_calls:
            raise ValueError("successes_to_close must be in 1..half_open_max_calls")
        if self.recovery_timeout <= 0 or self.open_backoff_multiplier < 1:
            raise ValueError("recovery_timeout must be > 0 and open_backoff_multiplier >= 1")


class CircuitOpenError(Exception):
    """Raised instead of calling the dependency; retry_after is seconds until the next trial."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open; retry after {retry_after:.3f}s")
        self.name = name
        self.retry_after = retry_after


Listener = Callable[[str, CircuitState, CircuitState], None]
# (generation at entry, took a half-open permit, start time)
_Permit = tuple[int, bool, float]
_PermitChain = tuple[_Permit, "_PermitChain | None"]


class CircuitBreaker:
    """Circuit breaker for coroutines; `.call`, `async with` and decorator forms."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        is_failure: Callable[[BaseException], bool] = default_is_failure,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._clock = clock
        self._is_failure = is_failure
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._window: deque[tuple[bool, bool]] = deque()
        self._window_failures = 0
        self._window_slow = 0
        self._consecutive = 0
        self._open_until = 0.0
        self._open_duration = self.config.recovery_timeout
        self._trials_admitted = 0
        self._trial_successes = 0
        self._listeners: list[Listener] = []
        self._permit_var: contextvars.ContextVar[_PermitChain | None] = contextvars.ContextVar(
            f"breaker_permits_{name}_{id(self)}"
        )
        self._m_success = BREAKER_CALLS.labels(name, "success")
        self._m_failure = BREAKER_CALLS.labels(name, "failure")
        self._m_ignored = BREAKER_CALLS.labels(name, "ignored")
        self._m_cancelled = BREAKER_CALLS.labels(name, "cancelled")
        self._m_rejected = BREAKER_REJECTIONS.labels(name)
        self._m_rate = BREAKER_FAILURE_RATE.labels(name)
        self._publish_state()

    # ----- state ---------------------------------------------------------------------------
    @property
    def state(self) -> CircuitState:
        """Current state (OPEN turns into HALF_OPEN lazily, on the next call)."""
        return self._state

    @property
    def failure_rate(self) -> float:
        """Failure rate over the window (0 when the window is empty)."""
        return self._window_failures / len(self._window) if self._window else 0.0

    @property
    def admits_calls(self) -> bool:
        """Whether a call made now would be let through; reads the state without changing it.

        Load balancers use it to skip an instance whose breaker would reject (outlier ejection)
        and to send it traffic again once the recovery timeout has passed.
        """
        state = self._state
        if state is CircuitState.CLOSED or state is CircuitState.DISABLED:
            return True
        if state is CircuitState.FORCED_OPEN:
            return False
        if state is CircuitState.OPEN:
            # Past the timeout the next call turns the breaker HALF_OPEN with a fresh trial budget.
            return self._clock() >= self._open_until
        return self._trials_admitted < self.config.half_open_max_calls

    def add_listener(self, listener: Listener) -> None:
        """Call listener(name, old, new) on every state change."""
        self._listeners.append(listener)

    def force_open(self) -> None:
        """Reject every call until reset() (operator switch)."""
        self._transition(CircuitState.FORCED_OPEN)

    def disable(self) -> None:
        """Let every call through and never trip until reset() (operator switch)."""
        self._transition(CircuitState.DISABLED)

    def reset(self) -> None:
        """Back to CLOSED with an empty window and the base recovery timeout."""
        self._open_duration = self.config.recovery_timeout
        self._transition(CircuitState.CLOSED)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._window.clear()
        self._window_failures = self._window_slow = self._consecutive = 0
        self._trials_admitted = self._trial_successes = 0
        self._m_rate.set(0.0)
        if new is CircuitState.OPEN:
            self._open_until = self._clock() + self._open_duration
        self._publish_state()
        if old is not new:
            _log.info("circuit_state_changed", breaker=self.name, old=old, new=new)
            for listener in self._listeners:
                try:
                    listener(self.name, old, new)
                except Exception:  # a listener must never break the call path
                    _log.exception("circuit_listener_failed", breaker=self.name)

    def _publish_state(self) -> None:
        for state in CircuitState:
            BREAKER_STATE.labels(self.name, state.value).set(1 if state is self._state else 0)

    def _trip(self) -> None:
        self._transition(CircuitState.OPEN)

    # ----- permits -------------------------------------------------------------------------
    def _acquire(self) -> _Permit:
        state = self._state
        if state is CircuitState.CLOSED or state is CircuitState.DISABLED:
            return (self._generation, False, self._clock())
        now = self._clock()
        if state is CircuitState.OPEN:
            if now < self._open_until:
                raise self._rejection(self._open_until - now)
            self._transition(CircuitState.HALF_OPEN)
        elif state is CircuitState.FORCED_OPEN:
            raise self._rejection(self.config.recovery_timeout)
        if self._trials_admitted >= self.config.half_open_max_calls:
            raise self._rejection(self._open_duration)
        self._trials_admitted += 1
        return (self._generation, True, now)

    def _rejection(self, retry_after: float) -> CircuitOpenError:
        """Count a rejected call (metric, span event) and make its error."""
        self._m_rejected.inc()
        span_event(
            "breaker.rejected",
            {"breaker.name": self.name, "breaker.state": self._state.value},
        )
        return CircuitOpenError(self.name, retry_after)

    def _release(self, permit: _Permit, exc: BaseException | None) -> None:
        generation, trial, started = permit
        if exc is not None and not isinstance(exc, Exception):
            # CancelledError, KeyboardInterrupt...: not an outcome; hand the trial permit back.
            self._m_cancelled.inc()
            if trial and generation == self._generation:
                self._trials_admitted -= 1
            return
        failed = exc is not None and self._is_failure(exc)
        limit = self.config.slow_call_duration
        slow = limit is not None and self._clock() - started >= limit
        (self._m_failure if failed else self._m_ignored if exc else self._m_success).inc()
        if generation != self._generation or self._state is CircuitState.DISABLED:
            return  # outcome of a call admitted under an earlier state
        if trial:
            self._record_trial(failed or slow)
        else:
            self._record_closed(failed, slow)

    def _record_trial(self, failed: bool) -> None:
        if failed:
            self._open_duration = min(
                self._open_duration * self.config.open_backoff_multiplier,
                self.config.max_recovery_timeout,
            )
            self._trip()
            return
        self._trial_successes += 1
        if self._trial_successes >= self.config.successes_to_close:
            self.reset()

    def _record_closed(self, failed: bool, slow: bool) -> None:
        cfg = self.config
        window = self._window
        if len(window) >= cfg.window_size:
            old_failed, old_slow = window.popleft()
            self._window_failures -= old_failed
            self._window_slow -= old_slow
        window.append((failed, slow))
        self._window_failures += failed
        self._window_slow += slow
        self._consecutive = self._consecutive + 1 if failed else 0
        if failed:
            self._m_rate.set(self._window_failures / len(window))
        if (
            cfg.consecutive_failures is not None and self._consecutive >= cfg.consecutive_failures
        ) or (
            len(window) >= cfg.minimum_calls
            and (
                (
                    cfg.failure_rate_threshold is not None
                    and self._window_failures / len(window) >= cfg.failure_rate_threshold
                )
                or (
                    cfg.slow_call_duration is not None
                    and self._window_slow / len(window) >= cfg.slow_call_rate_threshold
                )
            )
        ):
            self._trip()

    # ----- call forms ----------------------------------------------------------------------
    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await fn(*args, **kwargs) through the breaker; CircuitOpenError when rejected."""
        permit = self._acquire()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._release(permit, exc)
            raise
        self._release(permit, None)
        return result

    async def call_with_fallback(
        self,
        fallback: Callable[[BaseException], Awaitable[T]],
        fn: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Like call, but a rejection or a counted failure returns await fallback(exc)."""
        try:
            return await self.call(fn, *args, **kwargs)
        except CircuitOpenError as exc:
            return await fallback(exc)
        except Exception as exc:
            if self._is_failure(exc):
                return await fallback(exc)
            raise

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorator form: every call of fn goes through the breaker."""

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.call(fn, *args, **kwargs)

        return wrapper

    def protect(
        self, fallback: Callable[[BaseException], Awaitable[T]]
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """Decorator form with a fallback."""

        def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            @functools.wraps(fn)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                return await self.call_with_fallback(fallback, fn, *args, **kwargs)

            return wrapper

        return decorate

    async def __aenter__(self) -> CircuitBreaker:
        # An immutable chain per context: child tasks copy the context and cannot disturb it.
        self._permit_var.set((self._acquire(), self._permit_var.get(None)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        chain = self._permit_var.get()
        assert chain is not None, "__aexit__ without __aenter__"
        permit, previous = chain
        self._permit_var.set(previous)
        self._release(permit, exc)


_registry: dict[str, CircuitBreaker] = {}


def breaker_for(name: str, config: BreakerConfig | None = None) -> CircuitBreaker:
    """The process-wide breaker called name (created on first use)."""
    breaker = _registry.get(name)
    if breaker is None:
        breaker = _registry[name] = CircuitBreaker(name, config)
    elif config is not None and config != breaker.config:
        raise ValueError(f"breaker {name!r} already exists with a different config")
    return breaker
