"""Each overlay renders with `kubectl kustomize` and every object is valid for the Kubernetes API
(kubernetes-validate's bundled schemas of KUBERNETES_VERSION, strict: no unknown field)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from shop_devstack.deployment import kubernetes
from shop_devstack.deployment.kubernetes import (
    KUBERNETES_VERSION,
    KubectlMissing,
    Obj,
    find,
    schema_problems,
)


def test_every_object_validates_against_the_api_schemas(objects: list[Obj]) -> None:
    assert objects
    assert schema_problems(objects) == []


def test_the_version_is_pinned_and_its_schemas_are_bundled() -> None:
    """No download and no cluster: the schemas of the pinned version ship with the package."""
    assert KUBERNETES_VERSION.count(".") == 2
    pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    pod["spec"] = {"containers": [{"name": "c", "image": "i:1"}]}
    assert schema_problems([pod]) == []
    del pod["spec"]["containers"][0]["name"]
    assert any("'name' is a required property" in p for p in schema_problems([pod]))


def test_schema_check_names_an_unknown_field_a_wrong_type_and_an_unknown_kind(
    dev: list[Obj],
) -> None:
    broken = copy.deepcopy(dev)
    deployment = find(broken, "Deployment", "order-service")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    find(broken, "Service", "gateway")["spec"]["ports"][0]["port"] = "eight thousand"
    broken.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    problems = schema_problems(broken)
    assert any(p.startswith("Deployment/order-service:") and "imagee" in p for p in problems)
    assert any(p.startswith("Service/gateway:") and "eight thousand" in p for p in problems)
    assert "Widget/w: no example.com/v1 Widget in 1.32.0" in problems


def test_the_observability_component_adds_prometheus_grafana_and_jaeger(
    rendered: Callable[[tuple[str, tuple[str, ...]]], list[Obj]],
) -> None:
    for overlay in kubernetes.OVERLAYS:
        alone = {
            o["metadata"]["name"] for o in rendered((overlay, ())) if o["kind"] == "Deployment"
        }
        observed = {
            o["metadata"]["name"]
            for o in rendered((overlay, (kubernetes.OBSERVABILITY,)))
            if o["kind"] == "Deployment"
        }
        assert observed - alone == {"prometheus", "grafana", "jaeger"}, overlay


def test_everything_lands_in_the_shop_namespace(objects: list[Obj]) -> None:
    outside = [
        kubernetes.ref(o)
        for o in objects
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != "shop"
    ]
    assert outside == []


def test_without_kubectl_the_checks_fail_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(KubectlMissing, match=r"kubectl is not on PATH.*Install it"):
        kubernetes.kubectl()
