"""Hypothesis stateful test: the breaker against a tiny reference model of its state machine."""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from shop_common.resilience import BreakerConfig, CircuitBreaker, CircuitOpenError, CircuitState

CFG = BreakerConfig(
    consecutive_failures=3,
    failure_rate_threshold=None,
    recovery_timeout=10,
    half_open_max_calls=2,
    successes_to_close=2,
)


class Model:
    def __init__(self) -> None:
        self.state = "closed"
        self.run = 0
        self.opened_at = 0.0
        self.successes = 0

    def admit(self, now: float) -> bool:
        if self.state == "open" and now - self.opened_at >= CFG.recovery_timeout:
            self.state, self.successes = "half_open", 0
        return self.state != "open"

    def outcome(self, failed: bool, now: float) -> None:
        if self.state == "closed":
            self.run = self.run + 1 if failed else 0
            if self.run >= 3:
                self.state, self.opened_at, self.run = "open", now, 0
        elif failed:
            self.state, self.opened_at = "open", now
        else:
            self.successes += 1
            if self.successes >= 2:
                self.state, self.run = "closed", 0


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.breaker = CircuitBreaker("t-stateful", CFG, clock=lambda: self.now)
        self.model = Model()

    @rule(failed=st.booleans())
    def call(self, failed: bool) -> None:
        async def dependency() -> None:
            if failed:
                raise ConnectionError

        admitted = self.model.admit(self.now)
        try:
            asyncio.run(self.breaker.call(dependency))
            assert admitted
        except CircuitOpenError:
            assert not admitted
            return
        except ConnectionError:
            assert admitted
        self.model.outcome(failed, self.now)

    @rule(seconds=st.floats(min_value=0, max_value=15))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def same_state(self) -> None:
        real = self.breaker.state
        if self.model.state == "open":
            # OPEN becomes HALF_OPEN lazily on the next call in both.
            assert real is CircuitState.OPEN
        else:
            assert real.value == self.model.state


BreakerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestBreakerStateMachine = BreakerMachine.TestCase
