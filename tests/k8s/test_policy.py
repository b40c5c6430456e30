"""Policies of every rendered object (limits, non-root, hardening, tags, PDBs, ServiceAccounts,
NetworkPolicies) and the network each service gets (exactly what its code and Settings use);
each check is fed a deliberately broken object to show that it says so."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shop_devstack.deployment import compose, k8s_policy
from shop_devstack.deployment.contract import (
    APP_PACKAGES,
    INFRASTRUCTURE,
    Uses,
    callers_of,
    service_name,
    upstream_of,
    uses,
)
from shop_devstack.deployment.kubernetes import Obj, find


def _pod(objects: list[Obj], kind: str, name: str) -> Obj:
    spec: Obj = find(objects, kind, name)["spec"]["template"]["spec"]
    return spec


def test_every_workload_follows_the_policies(objects: list[Obj]) -> None:
    assert k8s_policy.policy_problems(objects) == []
    assert k8s_policy.root_problems(objects) == []


def test_a_container_without_limits_is_reported(dev: list[Obj]) -> None:
    del _pod(dev, "Deployment", "payment-service")["containers"][0]["resources"]["limits"]
    del _pod(dev, "StatefulSet", "redis")["containers"][0]["resources"]["requests"]["cpu"]
    problems = k8s_policy.policy_problems(dev)
    assert (
        "Deployment/payment-service container payment-service: no limits for ['cpu', 'memory']"
        in problems
    )
    assert "StatefulSet/redis container redis: no requests for ['cpu']" in problems


def test_a_container_that_may_run_as_root_is_reported(dev: list[Obj]) -> None:
    _pod(dev, "Deployment", "gateway")["securityContext"]["runAsUser"] = 0
    del _pod(dev, "Job", "order-service-migrate")["securityContext"]["runAsNonRoot"]
    problems = k8s_policy.root_problems(dev)
    assert problems == [
        "Deployment/gateway container gateway: may run as root",
        "Job/order-service-migrate container migrate: may run as root",
    ]


def test_latest_an_untagged_image_and_a_weakened_container_are_reported(dev: list[Obj]) -> None:
    containers = _pod(dev, "Deployment", "catalog-service")["containers"]
    containers[0]["image"] = "shop/catalog-service:latest"
    containers[0]["securityContext"]["readOnlyRootFilesystem"] = False
    containers[0]["securityContext"]["allowPrivilegeEscalation"] = True
    containers[0]["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    _pod(dev, "Deployment", "grafana")["containers"][0]["image"] = "grafana/grafana"
    _pod(dev, "Deployment", "jaeger")["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    problems = k8s_policy.policy_problems(dev)
    name = "Deployment/catalog-service container catalog-service"
    assert f"{name}: image 'shop/catalog-service:latest' has no fixed tag" in problems
    assert f"{name}: the root filesystem is writable" in problems
    assert f"{name}: allowPrivilegeEscalation is not false" in problems
    assert f"{name}: does not drop ALL capabilities" in problems
    assert (
        "Deployment/grafana container grafana: image 'grafana/grafana' has no fixed tag" in problems
    )
    assert "Deployment/jaeger: seccompProfile is not RuntimeDefault" in problems


def test_a_replicated_deployment_without_a_pdb_is_reported(dev: list[Obj]) -> None:
    dev = [
        o
        for o in dev
        if not (o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "user-service")
    ]
    find(dev, "Deployment", "prometheus")["spec"]["replicas"] = 2
    problems = k8s_policy.policy_problems(dev)
    assert "Deployment/user-service: 3 replicas and no PodDisruptionBudget" in problems
    assert "Deployment/prometheus: 2 replicas and no PodDisruptionBudget" in problems
    assert not any(p.startswith("Deployment/grafana:") for p in problems)  # one replica


def test_a_deployment_without_its_service_account_or_network_policy_is_reported(
    dev: list[Obj],
) -> None:
    del _pod(dev, "Deployment", "order-service")["serviceAccountName"]
    find(dev, "ServiceAccount", "payment-service")["automountServiceAccountToken"] = True
    _pod(dev, "Deployment", "gateway")["automountServiceAccountToken"] = True
    dev = [
        o for o in dev if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "grafana")
    ]
    problems = k8s_policy.policy_problems(dev)
    assert "Deployment/order-service: no ServiceAccount of its own (None)" in problems
    assert "ServiceAccount/payment-service: automountServiceAccountToken is not false" in problems
    assert "Deployment/gateway: the pod mounts a service account token" in problems
    assert "Deployment/grafana: no NetworkPolicy selects its pods" in problems


def test_what_each_service_uses_is_derived_from_its_code_and_settings() -> None:
    """The derivation, spelled out once: any change to what a service opens or calls shows here
    and in the NetworkPolicies' check below."""
    assert {
        p: (sorted(uses(p).infrastructure), sorted(uses(p).upstreams)) for p in APP_PACKAGES
    } == {
        "user_service": (["postgres", "rabbitmq"], []),
        "order_service": (["postgres", "rabbitmq", "redis"], ["catalog-service", "user-service"]),
        "payment_service": (["postgres", "rabbitmq"], []),
        "catalog_service": (["postgres", "rabbitmq", "redis"], []),
        "web_service": (
            ["rabbitmq"],
            [
                "catalog-service",
                "gateway",
                "order-service",
                "payment-service",
                "user-service",
                "web-service",
            ],
        ),
        "gateway": (
            ["rabbitmq", "redis"],
            ["catalog-service", "order-service", "payment-service", "user-service", "web-service"],
        ),
    }
    # The console scrapes the user service's metrics port, not its gRPC one.
    assert callers_of("user_service") == {
        "order-service": 50051,
        "gateway": 50051,
        "web-service": 9101,
    }
    assert upstream_of("USER_SERVICE_METRICS_ADDRESSES") == ("user-service", 9101)
    assert upstream_of("GATEWAY_ADDRESSES") == ("gateway", 8000)
    assert upstream_of("NO_SUCH_SERVICE_ADDRESSES") is None


def _compose_uses(doc: dict[str, Any], package: str) -> Uses:
    """What compose's environment points a service at: the hosts of its URLs, its address lists."""
    infrastructure: set[str] = set()
    upstreams: dict[str, int] = {}
    for service in compose.app_services(doc):
        if service.is_job or service.package != package:
            continue
        for key, value in service.env.items():
            if key.lower() in INFRASTRUCTURE:
                infrastructure.add(str(urlsplit(value).hostname))
            elif upstream := upstream_of(key):
                upstreams[upstream[0]] = int(value.split(",")[0].rpartition(":")[2])
    return Uses(frozenset(infrastructure), upstreams)


def test_compose_gives_each_service_what_it_uses(compose_doc: dict[str, Any]) -> None:
    """compose's environment agrees: a database and a broker URL where the code opens them,
    and an address list for each upstream (compose also hands REDIS_URL to every service)."""
    for package in APP_PACKAGES:
        found = _compose_uses(compose_doc, package)
        assert found.infrastructure >= uses(package).infrastructure, package
        assert found.upstreams == uses(package).upstreams, package


def test_each_service_reaches_exactly_what_it_uses_and_only_the_gateway_is_open(
    objects: list[Obj],
) -> None:
    assert k8s_policy.network_problems(objects) == []
    assert k8s_policy.infrastructure_problems(objects) == []


def test_network_check_catches_an_extra_path_an_open_service_and_no_default_deny(
    dev: list[Obj],
) -> None:
    order = find(dev, "NetworkPolicy", "order-service")["spec"]
    order["egress"].append({"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "payment-service"}}}],
                            "ports": [{"port": 8002}]})  # fmt: skip
    order["ingress"].append({"ports": [{"port": 8001}]})
    find(dev, "NetworkPolicy", "gateway")["spec"]["egress"].pop()  # web-service
    find(dev, "NetworkPolicy", "user-service")["spec"]["ingress"].pop()  # the console's scrape
    dev = [o for o in dev if o["metadata"]["name"] != "default-deny"]
    problems = k8s_policy.network_problems(dev)
    assert "no default-deny NetworkPolicy (podSelector {}, both directions, no rule)" in problems
    assert (
        "Deployment/order-service: egress to ('payment-service', 8002) it does not use" in problems
    )
    assert "Deployment/order-service: reachable from anywhere on [('*', 8001)]" in problems
    assert "Deployment/gateway: no egress to ('web-service', 8004) it uses" in problems
    assert "Deployment/user-service: no ingress from its caller ('web-service', 9101)" in problems


def test_infrastructure_check_catches_a_database_open_to_a_service_that_does_not_use_it(
    dev: list[Obj],
) -> None:
    rule = find(dev, "NetworkPolicy", "postgres")["spec"]["ingress"][0]
    rule["from"][0]["podSelector"]["matchExpressions"][0]["values"].append("gateway")
    redis = find(dev, "NetworkPolicy", "redis-clients")["spec"]["podSelector"]
    redis["matchExpressions"][0]["values"].append("payment-service")
    problems = k8s_policy.infrastructure_problems(dev) + k8s_policy.network_problems(dev)
    assert "StatefulSet/postgres: ingress from ('gateway', 5432) that does not use it" in problems
    assert "Deployment/payment-service: egress to ('redis', 6379) it does not use" in problems


def test_every_service_scales_horizontally_and_the_stateful_infrastructure_does_not(
    objects: list[Obj],
) -> None:
    targets = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    assert targets == {service_name(p) for p in APP_PACKAGES}
