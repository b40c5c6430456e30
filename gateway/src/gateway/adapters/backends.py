"""Calling a backend service: service breaker → balance (instance breakers eject) → proxy → retry.

Failures that count against a breaker: connection refused/reset, timeout, and 502/504 answers.
A backend's own 503 (e.g. its dependency is down) is passed on and retried, but not counted, so
one sick dependency does not eject healthy instances. Retries happen only for idempotent
methods or requests with an Idempotency-Key, only on those failures or a 503, and never past
the route's deadline; their policy is UPSTREAM_RETRY (shop_common.resilience.retry), each
attempt picking an instance anew.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from prometheus_client import Histogram
from shop_common.discovery import (
    NoAvailableInstanceError,
    Registry,
    RoundRobinBalancer,
    ServiceInstance,
    instance_breaker_name,
)
from shop_common.discovery.balancing import PowerOfTwoChoicesBalancer
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    RetryPolicy,
    retry_call,
)
from yarl import URL

from gateway.adapters.http_proxy import Proxy, ResponseBody
from gateway.domain.errors import ServiceUnavailableError, UpstreamError

UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_duration_seconds",
    "Time to the backend's response headers, by service and status.",
    ["service", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
COUNTED_STATUSES = frozenset({502, 504})


@dataclass
class UpstreamResponse:
    """Status, cleaned headers and a body iterator that releases the connection when done."""

    status: int
    headers: list[tuple[str, str]]
    body: ResponseBody
    instance_url: str  # the base URL of the instance that answered (internal: never sent on)


class _FailedAnswer(Exception):
    """A retryable backend answer, raised through the breaker; the last one is returned."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(f"backend answered {response.status}")
        self.response = response
        self.counted = response.status in COUNTED_STATUSES


def _is_failure(exc: BaseException) -> bool:
    if isinstance(exc, _FailedAnswer):
        return exc.counted
    return isinstance(exc, UpstreamError)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError | _FailedAnswer)


def _release_failed(exc: BaseException) -> None:
    """Before a retry: a failed answer that will not be returned gives its connection back."""
    if isinstance(exc, _FailedAnswer):
        exc.response.body.release()


# max_attempts is the route's: 1 + its retries for a request that may be retried, else 1.
UPSTREAM_RETRY = RetryPolicy(
    max_attempts=1, initial_backoff=0.02, max_backoff=0.5, jitter=1.0, retry_on=_is_retryable
)


def may_retry(method: str, headers: Sequence[tuple[str, str]]) -> bool:
    """Idempotent by method, or made so by the client's Idempotency-Key."""
    return method in IDEMPOTENT_METHODS or any(n.lower() == "idempotency-key" for n, _ in headers)


class Backend:
    """One service: its balancer, its per-instance breakers and its service breaker."""

    def __init__(
        self,
        service: str,
        registry: Registry,
        proxy: Proxy,
        *,
        instance_config: BreakerConfig,
        service_config: BreakerConfig,
        balancer: str = "round_robin",
        retry: RetryPolicy = UPSTREAM_RETRY,
    ) -> None:
        self.service = service
        self._proxy = proxy
        self._instance_config = instance_config
        self._instance_breakers: dict[str, CircuitBreaker] = {}
        self.breaker = CircuitBreaker(service, service_config, is_failure=_is_failure)
        kind = PowerOfTwoChoicesBalancer if balancer == "p2c" else RoundRobinBalancer
        self.balancer = kind(registry, service, is_available=self._admits)
        self.retry = retry
        self._latency: dict[int, Histogram] = {}

    def instance_breaker(self, instance: ServiceInstance) -> CircuitBreaker:
        """The breaker of one instance (created on first use)."""
        name = instance_breaker_name(instance)
        breaker = self._instance_breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(name, self._instance_config, is_failure=_is_failure)
            self._instance_breakers[name] = breaker
        return breaker

    def _admits(self, instance: ServiceInstance) -> bool:
        return self.instance_breaker(instance).admits_calls

    async def call(
        self,
        method: str,
        path_qs: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        *,
        timeout_seconds: float,
        retries: int,
        stream: bool = False,
    ) -> UpstreamResponse:
        """The backend's response; UpstreamError (502/504) or ServiceUnavailableError (503).

        With `stream` the deadline bounds the response headers only (Proxy.forward)."""
        deadline = Deadline.after(timeout_seconds)
        attempts = 1 + retries if may_retry(method, headers) else 1
        try:
            return await self.breaker.call(
                self._attempts, method, path_qs, headers, body, deadline, attempts, stream
            )
        except CircuitOpenError as exc:
            raise ServiceUnavailableError(
                f"{self.service} is failing; its circuit is open", exc.retry_after
            ) from exc
        except _FailedAnswer as exc:
            return exc.response

    async def _attempts(
        self,
        method: str,
        path_qs: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        deadline: Deadline,
        attempts: int,
        stream: bool,
    ) -> UpstreamResponse:
        # The hot path: a first attempt that answers costs no retry machinery at all.
        try:
            return await self._attempt(method, path_qs, headers, body, deadline, stream)
        except (UpstreamError, _FailedAnswer) as exc:
            if attempts <= 1:
                raise
            first_error = exc
        return await retry_call(
            replace(self.retry, max_attempts=attempts),
            self._attempt,
            method,
            path_qs,
            headers,
            body,
            deadline,
            stream,
            deadline=deadline,
            first_error=first_error,
            before_retry=_release_failed,
        )

    async def _attempt(
        self,
        method: str,
        path_qs: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        deadline: Deadline,
        stream: bool = False,
    ) -> UpstreamResponse:
        try:
            instance = self.balancer.pick()
        except NoAvailableInstanceError as exc:
            raise ServiceUnavailableError(str(exc), self._instance_config.recovery_timeout) from exc
        breaker = self.instance_breaker(instance)
        started = time.perf_counter()
        with self.balancer.in_flight(instance):
            try:
                async with breaker:
                    status, out_headers, chunks = await self._proxy.forward(
                        method,
                        URL(instance.base_url + path_qs, encoded=True),
                        headers,
                        body,
                        timeout_seconds=max(0.001, deadline.remaining()),
                        stream=stream,
                    )
                    response = UpstreamResponse(status, out_headers, chunks, instance.base_url)
                    self._observe(status, started)
                    if status in RETRYABLE_STATUSES:
                        raise _FailedAnswer(response)
                    return response
            except CircuitOpenError as exc:  # lost a half-open race to another request
                raise ServiceUnavailableError(str(exc), exc.retry_after) from exc
            except UpstreamError as exc:
                self._observe(exc.status, started)
                raise

    def _observe(self, status: int, started: float) -> None:
        child = self._latency.get(status)
        if child is None:
            child = self._latency[status] = UPSTREAM_LATENCY.labels(self.service, str(status))
        child.observe(time.perf_counter() - started)


class Upstreams:
    """The backends by service name, sharing one proxy session."""

    def __init__(self, backends: dict[str, Backend], proxy: Proxy) -> None:
        self.backends = backends
        self.proxy = proxy

    def __getitem__(self, service: str) -> Backend:
        return self.backends[service]

    async def close(self) -> None:
        """Close the shared session."""
        await self.proxy.close()
