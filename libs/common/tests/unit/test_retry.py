"""Retry with full jitter, attempts, max_elapsed, predicate, deadline; composition order."""

from __future__ import annotations

import asyncio
import random

import pytest
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    RetryPolicy,
    resilient_call,
    retry_call,
    with_timeout,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures: int, exc: Exception | None = None):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    async def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc or ConnectionError("down")
        return "ok"

    return fn, calls


async def test_retries_until_success_with_full_jitter_bounds() -> None:
    t = FakeTime()
    fn, calls = flaky(3)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, multiplier=2, max_backoff=0.3)
    assert await retry_call(policy, fn, clock=t.clock, sleep=t.sleep) == "ok"
    assert calls["n"] == 4
    for sleep, ceiling in zip(t.sleeps, (0.1, 0.2, 0.3), strict=True):
        assert 0 <= sleep <= ceiling


def test_full_jitter_spreads_over_whole_range() -> None:
    policy = RetryPolicy(initial_backoff=1, max_backoff=1)
    rng = random.Random(7)
    draws = [policy.backoff(0, rng) for _ in range(2000)]
    assert min(draws) < 0.05 and max(draws) > 0.95


async def test_max_attempts_and_predicate() -> None:
    t = FakeTime()
    fn, calls = flaky(10)
    with pytest.raises(ConnectionError):
        await retry_call(RetryPolicy(max_attempts=3), fn, clock=t.clock, sleep=t.sleep)
    assert calls["n"] == 3
    fn, calls = flaky(10, ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        await retry_call(RetryPolicy(max_attempts=3), fn, clock=t.clock, sleep=t.sleep)
    assert calls["n"] == 1


async def test_deadline_never_overrun_by_sleeps() -> None:
    t = FakeTime()
    fn, _ = flaky(1000)
    deadline = Deadline.after(1.0, clock=t.clock)
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.2)
    with pytest.raises(ConnectionError):
        await retry_call(policy, fn, deadline=deadline, clock=t.clock, sleep=t.sleep)
    assert t.now < 1.0
    t2 = FakeTime()
    fn, _ = flaky(1000)
    with pytest.raises(ConnectionError):
        await retry_call(
            RetryPolicy(max_attempts=1000, max_elapsed=0.5), fn, clock=t2.clock, sleep=t2.sleep
        )
    assert t2.now < 0.5


async def test_with_timeout_uses_tighter_of_timeout_and_deadline() -> None:
    with pytest.raises(TimeoutError):
        await with_timeout(asyncio.Event().wait(), 10, deadline=Deadline.after(0.01))
    with pytest.raises(TimeoutError, match="expired"):
        await with_timeout(asyncio.sleep(0), None, deadline=Deadline.after(-1))
    assert await with_timeout(asyncio.sleep(0, "v"), 1) == "v"


async def test_open_breaker_stops_every_attempt() -> None:
    breaker = CircuitBreaker("t-compose-open", BreakerConfig(consecutive_failures=1))
    fn, calls = flaky(1000)
    policy = RetryPolicy(max_attempts=4, initial_backoff=0)
    with pytest.raises(ConnectionError):
        await resilient_call(fn, breaker=breaker, retry=policy)
    assert calls["n"] == 4  # one breaker outcome for the whole retried call
    with pytest.raises(CircuitOpenError):
        await resilient_call(fn, breaker=breaker, retry=policy)
    assert calls["n"] == 4


async def test_per_attempt_timeout_is_retried_inside_deadline() -> None:
    attempts = 0

    async def first_hangs() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.Event().wait()
        return "ok"

    result = await resilient_call(
        first_hangs,
        retry=RetryPolicy(max_attempts=3, initial_backoff=0),
        timeout=0.02,
        deadline=Deadline.after(5),
    )
    assert (result, attempts) == ("ok", 2)
