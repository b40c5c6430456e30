"""Client-side load balancing over a registry's local list, with outlier ejection by breaker."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shop_common.discovery.base import NoAvailableInstanceError, Registry, ServiceInstance
from shop_common.resilience import BreakerConfig, CircuitBreaker, breaker_for


def instance_breaker_name(instance: ServiceInstance) -> str:
    """The breaker name of one instance: "<service>@<host>:<port>" (bounded: one per address)."""
    return f"{instance.service}@{instance.address}"


class InstanceBreakers:
    """The per-instance breakers callers wrap their calls in and balancers consult.

    Breakers live in shop_common.resilience's process-wide registry (breaker_for), so the
    caller that records outcomes and the balancer that skips open instances see the same one.
    """

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config

    def get(self, instance: ServiceInstance) -> CircuitBreaker:
        """The breaker guarding calls to instance."""
        return breaker_for(instance_breaker_name(instance), self.config)

    def admits(self, instance: ServiceInstance) -> bool:
        """False while the instance's breaker would reject a call (it is ejected)."""
        return self.get(instance).admits_calls


class _Balancer:
    """Shared parts: the instance source, ejection, and the in-flight counters."""

    def __init__(
        self,
        registry: Registry,
        service: str,
        *,
        breakers: InstanceBreakers | None = None,
        is_available: Callable[[ServiceInstance], bool] | None = None,
    ) -> None:
        self.registry = registry
        self.service = service
        self.breakers = breakers or InstanceBreakers()
        self._is_available = is_available or self.breakers.admits
        self._in_flight: dict[str, int] = {}

    def candidates(self) -> list[ServiceInstance]:
        """Registered instances whose breaker admits calls; NoAvailableInstanceError if none."""
        known = self.registry.instances(self.service)
        available = [instance for instance in known if self._is_available(instance)]
        if not available:
            raise NoAvailableInstanceError(self.service, len(known))
        return available

    def outstanding(self, instance: ServiceInstance) -> int:
        """Requests to instance that are under way now (counted by in_flight / lease)."""
        return self._in_flight.get(instance.instance_id, 0)

    @contextmanager
    def in_flight(self, instance: ServiceInstance) -> Iterator[ServiceInstance]:
        """Count one outstanding request to instance for the duration of the block."""
        key = instance.instance_id
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield instance
        finally:
            remaining = self._in_flight[key] - 1
            if remaining:
                self._in_flight[key] = remaining
            else:
                del self._in_flight[key]

    def pick(self) -> ServiceInstance:
        """The instance the next request should go to."""
        raise NotImplementedError

    @contextmanager
    def lease(self) -> Iterator[ServiceInstance]:
        """pick() and count the request as outstanding until the block ends."""
        with self.in_flight(self.pick()) as instance:
            yield instance


class RoundRobinBalancer(_Balancer):
    """Each available instance in turn."""

    def __init__(
        self,
        registry: Registry,
        service: str,
        *,
        breakers: InstanceBreakers | None = None,
        is_available: Callable[[ServiceInstance], bool] | None = None,
    ) -> None:
        super().__init__(registry, service, breakers=breakers, is_available=is_available)
        self._turn = itertools.count()

    def pick(self) -> ServiceInstance:
        """The next available instance in rotation."""
        available = self.candidates()
        return available[next(self._turn) % len(available)]


class PowerOfTwoChoicesBalancer(_Balancer):
    """Two random available instances, the one with fewer outstanding requests wins.

    Least-outstanding over two random picks avoids the herd that "least of all" causes when
    many clients see the same counts, and needs no global view.
    """

    def __init__(
        self,
        registry: Registry,
        service: str,
        *,
        breakers: InstanceBreakers | None = None,
        is_available: Callable[[ServiceInstance], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(registry, service, breakers=breakers, is_available=is_available)
        self._rng = rng or random.Random()

    def pick(self) -> ServiceInstance:
        """The less loaded of two random available instances (ties: the first drawn)."""
        available = self.candidates()
        if len(available) == 1:
            return available[0]
        first, second = self._rng.sample(available, 2)
        return second if self.outstanding(second) < self.outstanding(first) else first


LoadBalancer = RoundRobinBalancer | PowerOfTwoChoicesBalancer
