"""All deployment checks in one list: what `python -m shop_devstack check` prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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


CHECKS: dict[str, Check] = {
    "compose schema": schema_problems,
    "compose env vs Settings": settings_problems,
    "ports and health endpoints": contract_problems,
    "healthchecks, dependencies, memory, networks": topology_problems,
    "prometheus scrape targets": prometheus_problems,
    "Dockerfiles": _dockerfiles,
    "images from variables, offline override": _registry_free,
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
