"""Static discovery from `<SERVICE>_ADDRESSES` settings, and the registry factory."""

from __future__ import annotations

import pytest
from shop_common.discovery import (
    ConsulRegistry,
    HealthCheck,
    ServiceInstance,
    ServiceRegistration,
    StaticRegistry,
    local_instance,
    parse_addresses,
    registry_from_settings,
    service_name_of,
)
from shop_common.settings import ServiceSettings


class GatewayLikeSettings(ServiceSettings):
    user_service_addresses: str = "127.0.0.1:50051,127.0.0.1:50052"
    order_service_addresses: str = "127.0.0.1:8001"


def test_addresses_parse_into_instances_with_stable_ids() -> None:
    instances = parse_addresses("user-service", " 10.0.0.1:50051, ,[::1]:50052 ")
    assert [(i.host, i.port, i.address) for i in instances] == [
        ("10.0.0.1", 50051, "10.0.0.1:50051"),
        ("::1", 50052, "::1:50052"),
    ]
    assert instances[0].instance_id == "user-service@10.0.0.1:50051"
    assert instances == parse_addresses("user-service", ["10.0.0.1:50051", "[::1]:50052"])


@pytest.mark.parametrize("bad", ["localhost", "host:", ":80", "host:http", "host:0", "h:70000"])
def test_malformed_address_is_refused_with_its_service_named(bad: str) -> None:
    with pytest.raises(ValueError, match="user-service"):
        parse_addresses("user-service", bad)


def test_setting_names_map_to_service_names() -> None:
    assert service_name_of("user_service_addresses") == "user-service"
    assert service_name_of("PAYMENT_SERVICE_ADDRESSES") == "payment-service"


async def test_static_registry_from_settings_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_ADDRESSES", "order-a:8001,order-b:8001")
    registry = StaticRegistry.from_settings(GatewayLikeSettings())
    assert [i.address for i in registry.instances("user-service")] == [
        "127.0.0.1:50051",
        "127.0.0.1:50052",
    ]
    assert [i.host for i in registry.instances("order-service")] == ["order-a", "order-b"]
    await registry.watch("unknown-service")
    assert registry.instances("unknown-service") == []


async def test_static_registry_reconfiguration_tells_listeners() -> None:
    registry = StaticRegistry({"user-service": "a:1"})
    seen: list[tuple[str, list[str]]] = []
    registry.add_listener(lambda service, found: seen.append((service, [i.address for i in found])))
    registry.set_instances("user-service", "a:1,b:2")
    assert seen == [("user-service", ["a:1", "b:2"])]
    returned = registry.instances("user-service")
    returned.clear()  # a copy: callers cannot corrupt the registry's list
    assert len(registry.instances("user-service")) == 2


async def test_registration_against_static_registry_is_a_no_op_that_succeeds() -> None:
    registry = StaticRegistry({"user-service": "a:1"})
    instance = local_instance("order-service", "0.0.0.0", 8001, tags=["v1"], meta={"env": "t"})
    async with ServiceRegistration(registry, instance, HealthCheck.http()) as registered:
        assert registered is instance
    assert registry.instances("order-service") == []


def test_local_instance_ids_are_unique_per_call_and_name_the_process() -> None:
    first = local_instance("order-service", "127.0.0.1", 8001)
    second = local_instance("order-service", "127.0.0.1", 8001)
    assert first.instance_id != second.instance_id
    assert first.instance_id.startswith("order-service-")
    assert first.host == "127.0.0.1"
    assert local_instance("order-service", "0.0.0.0", 8001).host not in ("0.0.0.0", "")


def test_service_instance_is_hashable_despite_meta() -> None:
    a = ServiceInstance("s", "id", "h", 1, ("t",), {"k": "v"})
    assert {a: 1}[ServiceInstance("s", "id", "h", 1, ("t",), {"k": "v"})] == 1
    assert a.base_url == "http://h:1"


async def test_factory_picks_static_without_consul_and_consul_with_it() -> None:
    assert isinstance(registry_from_settings(GatewayLikeSettings()), StaticRegistry)
    consul = registry_from_settings(GatewayLikeSettings(consul_http_addr="127.0.0.1:8500"))
    assert isinstance(consul, ConsulRegistry)
    await consul.close()


def test_health_check_constructors() -> None:
    grpc = HealthCheck.grpc("shop.user.v1.UserService", ttl=9.0)
    assert (grpc.kind, grpc.grpc_service, grpc.ttl, grpc.heartbeat_interval) == (
        "grpc",
        "shop.user.v1.UserService",
        9.0,
        3.0,
    )
    assert HealthCheck.http("/healthz").http_path == "/healthz"
