"""ConsulRegistry when no Consul answers (a real closed port): fast named failures, no hangs."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from shop_common.discovery import (
    ConsulRegistry,
    HealthCheck,
    RegistryUnavailableError,
    ServiceNotWatchedError,
    ServiceRegistration,
    local_instance,
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def registry() -> AsyncIterator[ConsulRegistry]:
    consul = ConsulRegistry(
        f"127.0.0.1:{closed_port()}", request_timeout=1.0, first_answer_timeout=5.0
    )
    yield consul
    await consul.close()


async def test_register_fails_fast_with_a_named_error(registry: ConsulRegistry) -> None:
    instance = local_instance("order-service", "127.0.0.1", 8001)
    with pytest.raises(RegistryUnavailableError, match="/v1/agent/service/register"):
        await registry.register(instance, HealthCheck.http())
    # It keeps trying in the background so a late Consul still gets the instance.
    assert instance.instance_id in registry.registered_ids
    with pytest.raises(RegistryUnavailableError, match="/v1/agent/service/deregister"):
        await registry.deregister(instance.instance_id)
    assert instance.instance_id not in registry.registered_ids


async def test_service_starts_even_when_consul_is_down(registry: ConsulRegistry) -> None:
    instance = local_instance("order-service", "127.0.0.1", 8001)
    async with ServiceRegistration(registry, instance) as registered:
        assert registered == instance
        assert instance.instance_id in registry.registered_ids
    assert instance.instance_id not in registry.registered_ids


async def test_required_registration_raises_when_consul_is_down(registry: ConsulRegistry) -> None:
    instance = local_instance("order-service", "127.0.0.1", 8001)
    with pytest.raises(RegistryUnavailableError):
        async with ServiceRegistration(registry, instance, required=True):
            pytest.fail("the body must not run without a registration")
    assert instance.instance_id not in registry.registered_ids


async def test_watch_answers_after_the_first_failure_with_an_empty_list(
    registry: ConsulRegistry,
) -> None:
    service = "user-service"
    before = (
        REGISTRY.get_sample_value("shop_discovery_watch_errors_total", {"service": service}) or 0.0
    )
    await registry.watch(service)
    assert registry.instances(service) == []
    after = REGISTRY.get_sample_value("shop_discovery_watch_errors_total", {"service": service})
    assert after is not None and after >= before + 1
    with pytest.raises(ServiceNotWatchedError, match="payment-service"):
        registry.instances("payment-service")
