"""The Consul request bodies and answer parsing, checked against the documented HTTP API shapes."""

from __future__ import annotations

import pytest
from shop_common.discovery import HealthCheck, ServiceInstance
from shop_common.discovery.consul_api import (
    go_duration,
    parse_health_entries,
    registration_payload,
    ttl_check_id,
)

INSTANCE = ServiceInstance(
    "user-service", "user-service-h-1-ab", "10.0.0.5", 50051, ("grpc",), {"version": "1"}
)


def test_durations_are_go_duration_strings() -> None:
    assert go_duration(1.5) == "1500ms"
    assert go_duration(60) == "60000ms"
    assert go_duration(0) == "1ms"


def test_grpc_registration_carries_a_grpc_probe_and_a_ttl_heartbeat() -> None:
    check = HealthCheck.grpc("shop.user.v1.UserService", interval=5, ttl=15, timeout=2)
    body = registration_payload(INSTANCE, check)
    assert {k: body[k] for k in ("ID", "Name", "Tags", "Address", "Port", "Meta")} == {
        "ID": "user-service-h-1-ab",
        "Name": "user-service",
        "Tags": ["grpc"],
        "Address": "10.0.0.5",
        "Port": 50051,
        "Meta": {"version": "1"},
    }
    probe, heartbeat = body["Checks"]
    assert probe["GRPC"] == "10.0.0.5:50051/shop.user.v1.UserService"
    assert probe["GRPCUseTLS"] is False
    assert (probe["Interval"], probe["Timeout"]) == ("5000ms", "2000ms")
    assert heartbeat == {
        "CheckID": ttl_check_id("user-service-h-1-ab"),
        "Name": "user-service heartbeat",
        "TTL": "15000ms",
        "Status": "passing",
        "DeregisterCriticalServiceAfter": "60000ms",
    }
    assert probe["DeregisterCriticalServiceAfter"] == "60000ms"
    assert probe["CheckID"] != heartbeat["CheckID"]


def test_http_registration_probes_the_health_path() -> None:
    body = registration_payload(INSTANCE, HealthCheck.http("/health"))
    assert body["Checks"][0]["HTTP"] == "http://10.0.0.5:50051/health"
    assert "GRPC" not in body["Checks"][0]


def test_health_answer_parses_with_node_address_fallback() -> None:
    # Shape of GET /v1/health/service/:service (Node, Service, Checks per entry).
    answer = [
        {
            "Node": {"Node": "n1", "Address": "10.1.10.12"},
            "Service": {
                "ID": "b",
                "Service": "order-service",
                "Tags": None,
                "Address": "",
                "Meta": None,
                "Port": 8001,
            },
            "Checks": [],
        },
        {
            "Node": {"Node": "n2", "Address": "10.1.10.13"},
            "Service": {
                "ID": "a",
                "Service": "order-service",
                "Tags": ["v1"],
                "Address": "172.17.0.3",
                "Meta": {"env": "dev"},
                "Port": 8001,
            },
            "Checks": [],
        },
        {"Node": {}, "Service": {"ID": "broken"}},
    ]
    found = parse_health_entries("order-service", answer)
    assert found == [
        ServiceInstance("order-service", "a", "172.17.0.3", 8001, ("v1",), {"env": "dev"}),
        ServiceInstance("order-service", "b", "10.1.10.12", 8001, (), {}),
    ]


def test_non_list_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="order-service"):
        parse_health_entries("order-service", {"error": "nope"})
