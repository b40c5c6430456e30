"""Consul over its HTTP API (httpx.AsyncClient): registration with checks and heartbeats, watches.

No request path calls Consul: `instances()` reads a list that a background watch keeps fresh
with blocking queries (index + wait) on /v1/health/service/<name>?passing. When Consul cannot
be reached the last known list stays in place and the failure is logged. Both background loops
retry until stopped: registration with CONSUL_REGISTER_RETRY, watches with CONSUL_WATCH_RETRY.
No call to Consul is traced (shop_common.observability `untraced`).

The module is long because the registry (watches) and the registration keeper (checks,
heartbeats) share one HTTP client and its error handling; the raw API calls are in consul_api.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client import Counter, Gauge

from shop_common.discovery.base import (
    HealthCheck,
    InstancesListener,
    RegistryUnavailableError,
    ServiceInstance,
    ServiceNotWatchedError,
)
from shop_common.discovery.consul_api import (
    go_duration,
    parse_health_entries,
    registration_payload,
    ttl_check_id,
)
from shop_common.logging import get_logger
from shop_common.observability.propagation import untraced
from shop_common.resilience.retry import RetryPolicy, backoff_delays

_log = get_logger(__name__)
DISCOVERED_INSTANCES = Gauge(
    "shop_discovery_instances", "Passing instances in the local list.", ["service"]
)
WATCH_ERRORS = Counter(
    "shop_discovery_watch_errors_total", "Failed Consul watch queries.", ["service"]
)
# Pauses before re-registering, counted from the last success (the foreground register() or a
# heartbeat): 0.5 s, 1, 2, ... 30, each drawn from its upper half.
CONSUL_REGISTER_RETRY = RetryPolicy(
    max_attempts=None, initial_backoff=0.5, max_backoff=30.0, jitter=0.5
)
# Pauses after a failed watch query: 1 s, 2, 4, ... 30, each drawn from its upper half.
CONSUL_WATCH_RETRY = RetryPolicy(
    max_attempts=None, initial_backoff=1.0, max_backoff=30.0, jitter=0.5
)


@dataclass
class _Registration:
    instance: ServiceInstance
    check: HealthCheck
    registered: bool = False
    task: asyncio.Task[None] | None = None


class ConsulRegistry:
    """A Registry backed by a Consul agent's HTTP API."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        wait_seconds: float = 30.0,
        request_timeout: float = 5.0,
        first_answer_timeout: float = 5.0,
        register_retry: RetryPolicy = CONSUL_REGISTER_RETRY,
        watch_retry: RetryPolicy = CONSUL_WATCH_RETRY,
        min_query_interval: float = 0.05,
    ) -> None:
        if register_retry.gives_up or watch_retry.gives_up:
            raise ValueError("Consul's background loops retry until stopped: no attempt limit")
        base_url = address if "://" in address else f"http://{address}"
        headers = {"X-Consul-Token": token} if token else {}
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=request_timeout
        )
        self._wait = wait_seconds
        self._first_answer_timeout = first_answer_timeout
        self._register_retry = register_retry
        self._watch_retry = watch_retry
        self._min_query_interval = min_query_interval
        self._lists: dict[str, list[ServiceInstance]] = {}
        self._answered: dict[str, asyncio.Event] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._registrations: dict[str, _Registration] = {}
        self._listeners: list[InstancesListener] = []

    # ----- registration ----------------------------------------------------------------------
    async def register(self, instance: ServiceInstance, check: HealthCheck | None = None) -> None:
        """Register instance and keep it registered (heartbeats, re-registration) until deregister.

        The first attempt is made now and RegistryUnavailableError raised if it fails; the
        background task keeps retrying either way, so a Consul that comes up later gets the
        instance without a restart.
        """
        registration = _Registration(instance, check or HealthCheck())
        previous = self._registrations.pop(instance.instance_id, None)
        if previous is not None and previous.task is not None:
            previous.task.cancel()
        self._registrations[instance.instance_id] = registration
        registration.task = asyncio.create_task(
            self._keep_registered(registration), name=f"consul-keep-{instance.instance_id}"
        )
        await self._put_registration(registration)

    async def _put_registration(self, registration: _Registration) -> None:
        payload = registration_payload(registration.instance, registration.check)
        await self._request(
            "PUT",
            "/v1/agent/service/register",
            params={"replace-existing-checks": "true"},
            json=payload,
        )
        if not registration.registered:
            _log.info(
                "consul_registered",
                service=registration.instance.service,
                instance_id=registration.instance.instance_id,
                address=registration.instance.address,
            )
        registration.registered = True

    async def _keep_registered(self, registration: _Registration) -> None:
        failures = 0
        pauses = backoff_delays(self._register_retry)
        while True:
            if registration.registered:
                await asyncio.sleep(registration.check.heartbeat_interval)
            else:
                await asyncio.sleep(next(pauses))
            try:
                if registration.registered:
                    await self._heartbeat(registration.instance)
                else:
                    await self._put_registration(registration)
                failures = 0
                pauses = backoff_delays(self._register_retry)  # the next failure starts afresh
            except RegistryUnavailableError as exc:
                # Re-register on the next round: the agent may have restarted and forgotten us,
                # or reaped the service after DeregisterCriticalServiceAfter.
                failures += 1
                registration.registered = False
                _log.error(
                    "consul_heartbeat_failed",
                    instance_id=registration.instance.instance_id,
                    error=str(exc),
                    attempt=failures,
                )

    async def _heartbeat(self, instance: ServiceInstance) -> None:
        check_id = quote(ttl_check_id(instance.instance_id), safe="")
        await self._request(
            "PUT",
            f"/v1/agent/check/update/{check_id}",
            json={"Status": "passing", "Output": "heartbeat"},
        )

    async def deregister(self, instance_id: str) -> None:
        """Stop the heartbeats and remove the instance from Consul."""
        registration = self._registrations.pop(instance_id, None)
        if registration is not None and registration.task is not None:
            registration.task.cancel()
            await asyncio.gather(registration.task, return_exceptions=True)
        await self._request("PUT", f"/v1/agent/service/deregister/{quote(instance_id, safe='')}")
        _log.info("consul_deregistered", instance_id=instance_id)

    # ----- discovery ---------------------------------------------------------------------------
    async def watch(self, *services: str) -> None:
        """Start a blocking-query watch per service; wait (bounded) for each first answer."""
        for service in services:
            if service in self._watches:
                continue
            self._lists.setdefault(service, [])
            self._answered[service] = asyncio.Event()
            self._watches[service] = asyncio.create_task(
                self._watch_loop(service), name=f"consul-watch-{service}"
            )
        waits = [self._answered[s].wait() for s in services]
        try:
            async with asyncio.timeout(self._first_answer_timeout):
                await asyncio.gather(*waits)
        except TimeoutError:
            _log.warning("consul_watch_no_first_answer", services=list(services))

    def instances(self, service: str) -> list[ServiceInstance]:
        """The passing instances last seen (kept through Consul outages)."""
        try:
            return list(self._lists[service])
        except KeyError:
            raise ServiceNotWatchedError(service) from None

    def add_listener(self, listener: InstancesListener) -> None:
        """Call listener(service, instances) whenever a watched list changes."""
        self._listeners.append(listener)

    async def _watch_loop(self, service: str) -> None:
        index = 0
        failures = 0
        pauses = backoff_delays(self._watch_retry)
        path = f"/v1/health/service/{quote(service, safe='')}"
        while True:
            started = time.monotonic()
            params = {"passing": "true"}
            if index:
                params |= {"index": str(index), "wait": go_duration(self._wait)}
            try:
                # Consul adds up to wait/16 of jitter to a blocking query.
                response = await self._request(
                    "GET", path, params=params, read_seconds=self._wait * 17 / 16 + 5
                )
                new_index = int(response.headers.get("X-Consul-Index", "0"))
                found = parse_health_entries(service, response.json())
            except (RegistryUnavailableError, ValueError) as exc:
                failures += 1
                WATCH_ERRORS.labels(service).inc()
                _log.error(
                    "consul_watch_failed",
                    service=service,
                    error=str(exc),
                    attempt=failures,
                    kept_instances=len(self._lists[service]),
                )
                self._answered[service].set()
                index = 0  # ask afresh (non-blocking) once Consul answers again
                await asyncio.sleep(next(pauses))
                continue
            if failures:
                _log.info("consul_watch_recovered", service=service, after_failures=failures)
                failures = 0
                pauses = backoff_delays(self._watch_retry)
            # Blocking-query rules: an index that goes backwards resets; it is never below 1.
            index = max(new_index if new_index >= index else 0, 1)
            self._update(service, found)
            self._answered[service].set()
            # A busy cluster can answer at once many times in a row; do not spin.
            await asyncio.sleep(max(0.0, self._min_query_interval - (time.monotonic() - started)))

    def _update(self, service: str, found: list[ServiceInstance]) -> None:
        DISCOVERED_INSTANCES.labels(service).set(len(found))
        if found == self._lists[service]:
            return
        self._lists[service] = found
        _log.info(
            "discovery_instances_changed", service=service, instances=[i.address for i in found]
        )
        for listener in self._listeners:
            try:
                listener(service, list(found))
            except Exception:  # a listener must never stop the watch
                _log.exception("discovery_listener_failed", service=service)

    # ----- plumbing ----------------------------------------------------------------------------
    async def _request(
        self, method: str, path: str, *, read_seconds: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        # Registration, heartbeats and watches are the process's own bookkeeping: no trace.
        try:
            with untraced():
                if read_seconds is None:
                    response = await self._client.request(method, path, **kwargs)
                else:
                    response = await self._client.request(
                        method, path, timeout=read_seconds, **kwargs
                    )
        except httpx.HTTPError as exc:
            raise RegistryUnavailableError(f"{method} {path}: {exc!r}") from exc
        if response.status_code != 200:
            raise RegistryUnavailableError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
            )
        return response

    @property
    def registered_ids(self) -> Sequence[str]:
        """Ids of the instances this registry keeps registered."""
        return tuple(self._registrations)

    async def close(self) -> None:
        """Cancel watches and heartbeats (deregistration is ServiceRegistration's job), close HTTP."""
        tasks = [*self._watches.values()]
        tasks += [r.task for r in self._registrations.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watches.clear()
        await self._client.aclose()
