"""The Consul HTTP API's shapes: the registration body, durations, and health answers parsed."""

from __future__ import annotations

from typing import Any

from shop_common.discovery.base import HealthCheck, ServiceInstance
from shop_common.logging import get_logger

_log = get_logger(__name__)


def go_duration(seconds: float) -> str:
    """A Go duration string Consul parses ("1500ms")."""
    return f"{max(1, round(seconds * 1000))}ms"


def registration_payload(instance: ServiceInstance, check: HealthCheck) -> dict[str, Any]:
    """The body of PUT /v1/agent/service/register: the service, its probe and its TTL check."""
    probe: dict[str, Any] = {
        "CheckID": f"{instance.instance_id}:probe",
        "Name": f"{instance.service} {check.kind} probe",
        "Interval": go_duration(check.interval),
        "Timeout": go_duration(check.timeout),
        "DeregisterCriticalServiceAfter": go_duration(check.deregister_critical_after),
    }
    if check.kind == "grpc":
        target = instance.address + (f"/{check.grpc_service}" if check.grpc_service else "")
        probe |= {"GRPC": target, "GRPCUseTLS": False}
    else:
        probe["HTTP"] = instance.base_url + check.http_path
    heartbeat = {
        "CheckID": ttl_check_id(instance.instance_id),
        "Name": f"{instance.service} heartbeat",
        "TTL": go_duration(check.ttl),
        "Status": "passing",
        "DeregisterCriticalServiceAfter": go_duration(check.deregister_critical_after),
    }
    return {
        "ID": instance.instance_id,
        "Name": instance.service,
        "Tags": list(instance.tags),
        "Address": instance.host,
        "Port": instance.port,
        "Meta": dict(instance.meta),
        "Checks": [probe, heartbeat],
    }


def ttl_check_id(instance_id: str) -> str:
    """The id of an instance's heartbeat (TTL) check."""
    return f"{instance_id}:ttl"


def parse_health_entries(service: str, entries: Any) -> list[ServiceInstance]:
    """Instances from a /v1/health/service answer (Service.Address, else the node's address)."""
    if not isinstance(entries, list):
        raise ValueError(f"expected a list from /v1/health/service/{service}")
    instances = []
    for entry in entries:
        svc, node = entry.get("Service") or {}, entry.get("Node") or {}
        host = svc.get("Address") or node.get("Address")
        if not host or not svc.get("ID") or not isinstance(svc.get("Port"), int):
            _log.warning("consul_entry_skipped", service=service, entry=str(entry)[:200])
            continue
        instances.append(
            ServiceInstance(
                service=svc.get("Service") or service,
                instance_id=svc["ID"],
                host=host,
                port=svc["Port"],
                tags=tuple(svc.get("Tags") or ()),
                meta=dict(svc.get("Meta") or {}),
            )
        )
    return sorted(instances, key=lambda i: i.instance_id)
