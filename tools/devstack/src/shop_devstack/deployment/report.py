"""All deployment checks in one list: what `python -m shop_devstack check` prints."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shop_devstack.deployment import k8s_checks, k8s_policy, kubernetes
from shop_devstack.deployment.compose import (
    app_services,
    contract_problems,
    image_problems,
    load_compose,
    load_override,
    offline_problems,
    prometheus_problems,
    schema_problems,
    settings_problems,
    topology_problems,
)
from shop_devstack.deployment.contract import key_files
from shop_devstack.deployment.images import dockerfile_problems, registry_problems

Check = Callable[[Mapping[str, Any]], list[str]]


def _dockerfiles(doc: Mapping[str, Any]) -> list[str]:
    paths = sorted({service.dockerfile for service in app_services(doc)})
    return [problem for path in paths for problem in dockerfile_problems(path)]


def _registry_free(doc: Mapping[str, Any]) -> list[str]:
    paths = sorted({service.dockerfile for service in app_services(doc)})
    return [
        *image_problems(doc),
        *(problem for path in paths for problem in registry_problems(path)),
        *offline_problems(doc, load_override()),
    ]


def _kubernetes(doc: Mapping[str, Any]) -> list[str]:
    """deploy/k8s: each overlay, alone and with the observability component (tests/k8s)."""
    problems = []
    for overlay in kubernetes.OVERLAYS:
        for components in ((), (kubernetes.OBSERVABILITY,)):
            where = "+".join((overlay, *components))
            with tempfile.TemporaryDirectory() as scratch:
                try:
                    objects = kubernetes.render(overlay, Path(scratch), components)
                except (kubernetes.KubectlMissing, RuntimeError) as exc:
                    return [str(exc)]
            found = [
                *kubernetes.schema_problems(objects),
                *k8s_checks.settings_problems(objects),
                *k8s_checks.port_problems(objects),
                *k8s_checks.probe_problems(objects),
                *k8s_checks.image_problems(objects, doc),
                *(k8s_checks.prometheus_problems(objects) if components else []),
                *k8s_policy.policy_problems(objects),
                *k8s_policy.root_problems(objects),
                *k8s_policy.network_problems(objects),
                *k8s_policy.infrastructure_problems(objects),
                *(k8s_policy.secret_problems(objects, key_files()) if overlay == "dev" else []),
            ]
            problems += [f"{where}: {problem}" for problem in found]
    return problems


CHECKS: dict[str, Check] = {
    "compose schema": schema_problems,
    "compose env vs Settings": settings_problems,
    "ports and health endpoints": contract_problems,
    "healthchecks, dependencies, memory, networks": topology_problems,
    "prometheus scrape targets": prometheus_problems,
    "Dockerfiles": _dockerfiles,
    "images from variables, offline override": _registry_free,
    "kubernetes manifests (deploy/k8s)": _kubernetes,
}


def run_checks() -> dict[str, list[str]]:
    """Each check's problems (an import error of a service not yet built counts as one)."""
    doc = load_compose()
    results: dict[str, list[str]] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check(doc)
        except ImportError as exc:
            results[name] = [f"cannot import {exc.name}: {exc}"]
    return results
