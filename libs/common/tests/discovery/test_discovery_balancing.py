"""Round-robin and power-of-two-choices over real concurrent tasks, with outlier ejection."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import pytest
from shop_common.discovery import (
    InstanceBreakers,
    NoAvailableInstanceError,
    PowerOfTwoChoicesBalancer,
    RoundRobinBalancer,
    StaticRegistry,
    instance_breaker_name,
)
from shop_common.resilience import BreakerConfig, CircuitBreaker, CircuitOpenError, CircuitState


def unique_service() -> str:
    # Breakers are process-wide by name; a fresh service name keeps tests independent.
    return f"svc-{uuid.uuid4().hex[:8]}"


def registry_with(service: str, count: int) -> StaticRegistry:
    return StaticRegistry({service: [f"10.0.0.{n}:8000" for n in range(1, count + 1)]})


async def fail_through(breaker: CircuitBreaker, times: int) -> None:
    async def refused() -> None:
        raise ConnectionRefusedError("down")

    for _ in range(times):
        with pytest.raises((ConnectionRefusedError, CircuitOpenError)):
            await breaker.call(refused)


async def test_round_robin_spreads_concurrent_requests_evenly() -> None:
    service = unique_service()
    balancer = RoundRobinBalancer(registry_with(service, 3), service)
    served: Counter[str] = Counter()

    async def request() -> None:
        with balancer.lease() as instance:
            await asyncio.sleep(0)
            served[instance.address] += 1

    await asyncio.gather(*(request() for _ in range(300)))
    assert served == {"10.0.0.1:8000": 100, "10.0.0.2:8000": 100, "10.0.0.3:8000": 100}
    assert all(balancer.outstanding(i) == 0 for i in balancer.candidates())


async def test_p2c_sends_new_requests_away_from_the_instance_holding_slow_ones() -> None:
    """One instance never answers while the requests are arriving; the other answers at once."""
    service = unique_service()
    registry = registry_with(service, 2)
    slow = registry.instances(service)[0]
    release = asyncio.Event()

    async def request(balancer: RoundRobinBalancer | PowerOfTwoChoicesBalancer) -> str:
        with balancer.lease() as instance:
            if instance == slow:
                await release.wait()
            else:
                await asyncio.sleep(0)
            return instance.address

    async def arrivals(balancer: RoundRobinBalancer | PowerOfTwoChoicesBalancer) -> Counter[str]:
        tasks = []
        for _ in range(60):
            tasks.append(asyncio.create_task(request(balancer)))
            await asyncio.sleep(0)  # one arrival at a time; fast requests finish in between
            await asyncio.sleep(0)
        release.set()
        served = Counter(await asyncio.gather(*tasks))
        release.clear()
        return served

    p2c = await arrivals(PowerOfTwoChoicesBalancer(registry, service, rng=random.Random(7)))
    round_robin = await arrivals(RoundRobinBalancer(registry, service))
    assert round_robin[slow.address] == 30
    # Only a tie (both idle) can send a request to the slow instance: at most the first one.
    assert p2c[slow.address] <= 1
    assert sum(p2c.values()) == 60


async def test_p2c_spreads_evenly_when_load_is_equal() -> None:
    service = unique_service()
    balancer = PowerOfTwoChoicesBalancer(registry_with(service, 4), service, rng=random.Random(1))
    held = []
    for _ in range(40):
        lease = balancer.lease()
        lease.__enter__()
        held.append(lease)
    counts = sorted(balancer.outstanding(i) for i in balancer.candidates())
    # Each pick goes to the less loaded of two, so no instance gets far ahead.
    assert counts[-1] - counts[0] <= 2
    for lease in held:
        lease.__exit__(None, None, None)
    assert all(balancer.outstanding(i) == 0 for i in balancer.candidates())


async def test_in_flight_count_is_released_when_the_request_fails() -> None:
    service = unique_service()
    balancer = PowerOfTwoChoicesBalancer(registry_with(service, 1), service)
    seen: list[int] = []

    def failing_request() -> None:
        with balancer.lease() as instance:
            seen.append(balancer.outstanding(instance))
            raise RuntimeError("backend said no")

    with pytest.raises(RuntimeError):
        failing_request()
    assert seen == [1]
    assert balancer.outstanding(balancer.pick()) == 0


@pytest.mark.parametrize("balancer_class", [RoundRobinBalancer, PowerOfTwoChoicesBalancer])
async def test_open_breaker_ejects_the_instance_until_it_recovers(
    balancer_class: type[RoundRobinBalancer],
) -> None:
    service = unique_service()
    registry = registry_with(service, 3)
    now = [0.0]
    breakers = {
        i.instance_id: CircuitBreaker(
            f"{service}-{i.port}-{i.host}",
            BreakerConfig(consecutive_failures=3, recovery_timeout=10.0),
            clock=lambda: now[0],
        )
        for i in registry.instances(service)
    }
    balancer = balancer_class(
        registry, service, is_available=lambda i: breakers[i.instance_id].admits_calls
    )
    bad = registry.instances(service)[1]
    breaker = breakers[bad.instance_id]
    await fail_through(breaker, 3)
    assert breaker.state is CircuitState.OPEN
    picks = Counter(balancer.pick().address for _ in range(200))
    assert set(picks) == {i.address for i in registry.instances(service)} - {bad.address}

    now[0] = 10.0  # recovery timeout over: readmitted for a half-open trial
    assert bad.address in {balancer.pick().address for _ in range(200)}

    async def healthy() -> str:
        return "ok"

    assert await breaker.call(healthy) == "ok"
    assert breaker.state is CircuitState.CLOSED


async def test_default_ejection_reads_the_shared_per_instance_breaker() -> None:
    """The caller wraps calls in breakers.get(instance); the balancer sees the same breaker."""
    service = unique_service()
    registry = registry_with(service, 2)
    breakers = InstanceBreakers(BreakerConfig(consecutive_failures=2))
    balancer = PowerOfTwoChoicesBalancer(registry, service, breakers=breakers)
    bad, good = registry.instances(service)
    assert breakers.get(bad).name == instance_breaker_name(bad) == f"{service}@{bad.address}"
    await fail_through(breakers.get(bad), 2)
    assert breakers.get(bad).state is CircuitState.OPEN
    assert {balancer.pick() for _ in range(50)} == {good}
    breakers.get(bad).reset()
    assert {balancer.pick() for _ in range(50)} == {bad, good}


async def test_half_open_instance_takes_only_its_trial_budget() -> None:
    now = [0.0]
    breaker = CircuitBreaker(
        "trial-budget",
        BreakerConfig(consecutive_failures=1, recovery_timeout=5.0, half_open_max_calls=1),
        clock=lambda: now[0],
    )
    await fail_through(breaker, 1)
    assert not breaker.admits_calls
    now[0] = 5.0
    assert breaker.admits_calls
    trial_started, finish = asyncio.Event(), asyncio.Event()

    async def slow_trial() -> None:
        trial_started.set()
        await finish.wait()

    trial = asyncio.create_task(breaker.call(slow_trial))
    await trial_started.wait()
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.admits_calls  # the one trial permit is taken
    finish.set()
    await trial
    assert breaker.admits_calls and breaker.state is CircuitState.CLOSED
    breaker.force_open()
    assert not breaker.admits_calls
    breaker.disable()
    assert breaker.admits_calls


async def test_no_instance_or_all_ejected_is_a_named_error() -> None:
    service = unique_service()
    empty = RoundRobinBalancer(StaticRegistry({service: []}), service)
    with pytest.raises(NoAvailableInstanceError, match="no instance registered"):
        empty.pick()
    registry = registry_with(service, 2)
    balancer = PowerOfTwoChoicesBalancer(registry, service, is_available=lambda _: False)
    with pytest.raises(NoAvailableInstanceError, match="all 2 instances ejected") as caught:
        balancer.pick()
    assert (caught.value.service, caught.value.known) == (service, 2)


async def test_balancer_follows_registry_changes() -> None:
    service = unique_service()
    registry = registry_with(service, 1)
    balancer = RoundRobinBalancer(registry, service)
    assert {balancer.pick().address for _ in range(4)} == {"10.0.0.1:8000"}
    registry.set_instances(service, "10.0.0.7:8000,10.0.0.8:8000")
    assert {balancer.pick().address for _ in range(4)} == {"10.0.0.7:8000", "10.0.0.8:8000"}
