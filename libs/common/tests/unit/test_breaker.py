"""Circuit breaker: every transition, window, slow calls, exact half-open permits, cancellation."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
from prometheus_client import REGISTRY
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    breaker_for,
    default_is_failure,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Unavailable(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


async def ok() -> str:
    return "ok"


async def boom() -> None:
    raise ConnectionError("down")


def make(name: str, clock: FakeClock, **cfg: object) -> CircuitBreaker:
    return CircuitBreaker(name, BreakerConfig(**cfg), clock=clock)  # type: ignore[arg-type]


async def fail_n(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ConnectionError):
            await b.call(boom)


async def test_consecutive_failures_trip_then_half_open_then_close() -> None:
    clock = FakeClock()
    seen: list[tuple[CircuitState, CircuitState]] = []
    b = make(
        "t-consec", clock, consecutive_failures=3, failure_rate_threshold=None, recovery_timeout=5
    )
    b.add_listener(lambda _n, old, new: seen.append((old, new)))
    await fail_n(b, 2)
    assert await b.call(ok) == "ok"  # success resets the run
    await fail_n(b, 2)
    assert b.state is CircuitState.CLOSED
    await fail_n(b, 1)
    assert b.state is CircuitState.OPEN
    clock.now += 2
    with pytest.raises(CircuitOpenError) as info:
        await b.call(ok)
    assert info.value.retry_after == pytest.approx(3.0)
    clock.now += 3
    assert await b.call(ok) == "ok"
    assert b.state is CircuitState.CLOSED
    assert seen == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


async def test_failure_rate_needs_minimum_calls() -> None:
    clock = FakeClock()
    b = make(
        "t-rate",
        clock,
        consecutive_failures=None,
        failure_rate_threshold=0.5,
        window_size=10,
        minimum_calls=6,
    )
    await fail_n(b, 3)
    await b.call(ok)
    await b.call(ok)
    assert b.state is CircuitState.CLOSED  # 3/5 but under minimum calls
    await b.call(ok)  # 3/6 = 0.5 -> trips
    assert b.state is CircuitState.OPEN


async def test_window_slides_old_failures_out() -> None:
    clock = FakeClock()
    b = make(
        "t-slide",
        clock,
        consecutive_failures=None,
        failure_rate_threshold=0.5,
        window_size=4,
        minimum_calls=4,
    )
    await fail_n(b, 1)
    for _ in range(3):
        await b.call(ok)
    assert b.failure_rate == 0.25
    await b.call(ok)  # the failure slides out
    assert b.failure_rate == 0.0
    assert b.state is CircuitState.CLOSED


async def test_slow_calls_trip() -> None:
    clock = FakeClock()
    b = make(
        "t-slow",
        clock,
        consecutive_failures=None,
        failure_rate_threshold=None,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        window_size=4,
        minimum_calls=4,
    )

    async def slow() -> str:
        clock.now += 1.5
        return "late"

    await b.call(ok)
    await b.call(ok)
    await b.call(slow)
    assert b.state is CircuitState.CLOSED
    await b.call(slow)
    assert b.state is CircuitState.OPEN


async def test_half_open_admits_exactly_n_of_200_concurrent() -> None:
    clock = FakeClock()
    b = make(
        "t-ho",
        clock,
        consecutive_failures=1,
        recovery_timeout=1,
        half_open_max_calls=3,
        successes_to_close=3,
    )
    await fail_n(b, 1)
    clock.now += 1
    reached = 0
    gate = asyncio.Event()

    async def dependency() -> str:
        nonlocal reached
        reached += 1
        await gate.wait()
        return "ok"

    tasks = [asyncio.create_task(b.call(dependency)) for _ in range(200)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert reached == 3
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 197
    assert b.state is CircuitState.CLOSED


async def test_half_open_failure_reopens_with_growing_open_time() -> None:
    clock = FakeClock()
    b = make(
        "t-grow",
        clock,
        consecutive_failures=1,
        recovery_timeout=2,
        open_backoff_multiplier=2,
        max_recovery_timeout=5,
    )
    await fail_n(b, 1)
    for expected in (4.0, 5.0):
        clock.now += 100
        await fail_n(b, 1)  # the trial fails
        assert b.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError) as info:
            await b.call(ok)
        assert info.value.retry_after == pytest.approx(expected)
    clock.now += 100
    await b.call(ok)
    assert b.state is CircuitState.CLOSED


async def test_cancellation_not_counted_and_permit_returned() -> None:
    clock = FakeClock()
    b = make("t-cancel", clock, consecutive_failures=1, half_open_max_calls=1)
    await fail_n(b, 1)
    clock.now += 100
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(b.call(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is CircuitState.HALF_OPEN
    assert await b.call(ok) == "ok"  # permit was handed back
    assert b.state is CircuitState.CLOSED


async def test_not_failures_do_not_trip() -> None:
    clock = FakeClock()
    b = make("t-ignored", clock, consecutive_failures=1)
    for _ in range(3):
        with pytest.raises(Unavailable):
            await b.call(_raise, Unavailable(grpc.StatusCode.NOT_FOUND))
    assert b.state is CircuitState.CLOSED
    with pytest.raises(Unavailable):
        await b.call(_raise, Unavailable(grpc.StatusCode.UNAVAILABLE))
    assert b.state is CircuitState.OPEN


async def _raise(exc: BaseException) -> None:
    raise exc


def test_default_classification() -> None:
    req = httpx.Request("GET", "http://x")
    assert default_is_failure(Unavailable(grpc.StatusCode.DEADLINE_EXCEEDED))
    assert default_is_failure(Unavailable(grpc.StatusCode.RESOURCE_EXHAUSTED))
    assert not default_is_failure(Unavailable(grpc.StatusCode.INVALID_ARGUMENT))
    assert default_is_failure(httpx.HTTPStatusError("x", request=req, response=httpx.Response(503)))
    assert not default_is_failure(
        httpx.HTTPStatusError("x", request=req, response=httpx.Response(404))
    )
    assert default_is_failure(httpx.ConnectError("x"))
    assert default_is_failure(TimeoutError())
    assert not default_is_failure(asyncio.CancelledError())
    assert not default_is_failure(ValueError())


async def test_forced_open_disabled_reset() -> None:
    clock = FakeClock()
    b = make("t-ops", clock, consecutive_failures=1)
    b.force_open()
    with pytest.raises(CircuitOpenError):
        await b.call(ok)
    b.disable()
    await fail_n(b, 5)
    assert b.state is CircuitState.DISABLED
    b.reset()
    assert await b.call(ok) == "ok"
    assert b.state is CircuitState.CLOSED


async def test_async_with_decorator_and_fallback() -> None:
    clock = FakeClock()
    b = make("t-forms", clock, consecutive_failures=2)
    with pytest.raises(ConnectionError):
        async with b:
            raise ConnectionError
    guarded = b(boom)
    with pytest.raises(ConnectionError):
        await guarded()
    assert b.state is CircuitState.OPEN

    async def fallback(exc: BaseException) -> str:
        return f"fallback:{type(exc).__name__}"

    @b.protect(fallback)
    async def get() -> str:
        return "live"

    assert await get() == "fallback:CircuitOpenError"


def test_registry_shares_by_name_and_metrics() -> None:
    a = breaker_for("t-registry")
    assert breaker_for("t-registry") is a
    with pytest.raises(ValueError, match="different config"):
        breaker_for("t-registry", BreakerConfig(window_size=50))
    assert (
        REGISTRY.get_sample_value(
            "circuit_breaker_state", {"name": "t-registry", "state": "closed"}
        )
        == 1
    )


async def test_metrics_count_outcomes_and_rejections() -> None:
    clock = FakeClock()
    b = make("t-metrics", clock, consecutive_failures=1)
    await b.call(ok)
    await fail_n(b, 1)
    with pytest.raises(CircuitOpenError):
        await b.call(ok)
    get = REGISTRY.get_sample_value
    assert get("circuit_breaker_calls_total", {"name": "t-metrics", "outcome": "success"}) == 1
    assert get("circuit_breaker_calls_total", {"name": "t-metrics", "outcome": "failure"}) == 1
    assert get("circuit_breaker_rejections_total", {"name": "t-metrics"}) == 1
    assert get("circuit_breaker_state", {"name": "t-metrics", "state": "open"}) == 1


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="successes_to_close"):
        BreakerConfig(half_open_max_calls=1, successes_to_close=2)
