"""Retry with full jitter, attempts, max_elapsed, predicate, deadline; composition order;
backoff_delays (the same policy for loops that retry by hand)."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import replace

import pytest
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    RetryPolicy,
    backoff_delays,
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


def test_backoff_delays_follow_the_policy_schedule() -> None:
    fixed = RetryPolicy(max_attempts=None, initial_backoff=0.05, max_backoff=0.3, jitter=0.0)
    assert list(itertools.islice(backoff_delays(fixed), 6)) == [0.05, 0.1, 0.2, 0.3, 0.3, 0.3]
    # One pause per retry: max_attempts - 1 of them.
    assert list(backoff_delays(replace(fixed, max_attempts=3))) == [0.05, 0.1]
    assert list(backoff_delays(replace(fixed, max_attempts=1))) == []
    constant = RetryPolicy(max_attempts=None, initial_backoff=0.5, multiplier=1, jitter=0.0)
    assert list(itertools.islice(backoff_delays(constant), 3)) == [0.5, 0.5, 0.5]
    # A loop that runs for ever must not overflow: the pause stays at the cap.
    assert fixed.backoff(100_000) == 0.3


def test_backoff_delays_jitter_bounds_and_same_draws_as_backoff() -> None:
    equal = RetryPolicy(max_attempts=None, initial_backoff=1, max_backoff=8, jitter=0.5)
    pauses = list(itertools.islice(backoff_delays(equal, rng=random.Random(3)), 200))
    for n, pause in enumerate(pauses):
        ceiling = min(8, 2**n)
        assert ceiling / 2 <= pause <= ceiling
    rng = random.Random(3)
    assert pauses[:5] == [equal.backoff(n, rng) for n in range(5)]
    full = RetryPolicy(max_attempts=None, initial_backoff=1, max_backoff=1)
    draws = list(itertools.islice(backoff_delays(full, rng=random.Random(7)), 2000))
    assert min(draws) < 0.05 and max(draws) > 0.95


def test_backoff_delays_stop_before_a_pause_that_would_overrun() -> None:
    t = FakeTime()
    fixed = RetryPolicy(max_attempts=None, initial_backoff=0.1, max_backoff=0.4, jitter=0.0)
    taken = []
    for pause in backoff_delays(fixed, deadline=Deadline.after(1.0, clock=t.clock), clock=t.clock):
        taken.append(pause)
        t.now += pause + 0.01  # the pause, then an attempt
    assert taken == [0.1, 0.2, 0.4] and t.now < 1.0  # a fourth pause (0.4) would reach 1.13
    t2 = FakeTime()
    elapsed = replace(fixed, max_elapsed=0.35)
    taken = []
    for pause in backoff_delays(elapsed, clock=t2.clock):
        taken.append(pause)
        t2.now += pause
    assert taken == [0.1, 0.2]


async def test_retry_call_and_backoff_delays_draw_the_same_pauses() -> None:
    t = FakeTime()
    fn, _ = flaky(4)
    policy = RetryPolicy(max_attempts=None, initial_backoff=0.1, max_backoff=1.0)
    await retry_call(policy, fn, clock=t.clock, sleep=t.sleep, rng=random.Random(11))
    assert t.sleeps == list(itertools.islice(backoff_delays(policy, rng=random.Random(11)), 4))


async def test_unlimited_attempts_retry_until_success() -> None:
    t = FakeTime()
    fn, calls = flaky(50)
    policy = RetryPolicy(max_attempts=None, initial_backoff=0.01, max_backoff=0.02)
    assert await retry_call(policy, fn, clock=t.clock, sleep=t.sleep) == "ok"
    assert calls["n"] == 51


async def test_first_error_counts_as_the_first_attempt() -> None:
    t = FakeTime()
    fn, calls = flaky(1)
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.1, jitter=0.0)
    result = await retry_call(
        policy, fn, first_error=ConnectionError("first"), clock=t.clock, sleep=t.sleep
    )
    # Attempt 1 was the caller's; fn failed at attempt 2 and succeeded at attempt 3.
    assert (result, calls["n"], t.sleeps) == ("ok", 2, [0.1, 0.2])
    fn, calls = flaky(10)
    with pytest.raises(ConnectionError, match="down"):
        await retry_call(policy, fn, first_error=ConnectionError("first"), sleep=t.sleep)
    assert calls["n"] == 2
    fn, calls = flaky(0)
    with pytest.raises(ValueError, match="not retryable"):
        await retry_call(policy, fn, first_error=ValueError("not retryable"), sleep=t.sleep)
    assert calls["n"] == 0
    single = replace(policy, max_attempts=1)
    with pytest.raises(ConnectionError, match="first"):
        await retry_call(single, fn, first_error=ConnectionError("first"), sleep=t.sleep)
    assert calls["n"] == 0


async def test_before_retry_sees_every_error_that_is_retried_not_the_last() -> None:
    t = FakeTime()
    errors = [ConnectionError(str(n)) for n in range(3)]
    seen: list[BaseException] = []

    async def fn() -> str:
        raise errors[len(seen)]

    with pytest.raises(ConnectionError, match="2"):
        await retry_call(RetryPolicy(max_attempts=3), fn, before_retry=seen.append, sleep=t.sleep)
    assert seen == errors[:2]


def test_policy_rejects_nonsense() -> None:
    for bad in (
        {"max_attempts": 0},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"multiplier": 0.5},
        {"initial_backoff": -1},
    ):
        with pytest.raises(ValueError, match="required"):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_gives_up_tells_a_policy_for_loops_that_run_until_stopped() -> None:
    assert RetryPolicy().gives_up
    assert RetryPolicy(max_attempts=None, max_elapsed=5.0).gives_up
    assert not RetryPolicy(max_attempts=None).gives_up
