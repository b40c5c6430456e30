"""deploy/k8s rendered once per session with `kubectl kustomize`, each overlay alone and with the
observability component. No kubectl: every test here fails saying what to install (the
manifests are not checked otherwise, so they must not pass by being skipped)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from shop_devstack.deployment import compose
from shop_devstack.deployment.kubernetes import OBSERVABILITY, OVERLAYS, KubectlMissing, Obj, render

VARIANTS = [(o, c) for o in OVERLAYS for c in ((), (OBSERVABILITY,))]
VARIANT_IDS = [f"{o}{'+' + c[0] if c else ''}" for o, c in VARIANTS]
Variant = tuple[str, tuple[str, ...]]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Variant], list[Obj]]:
    """variant → its objects (rendered on first use; a copy for each caller to break)."""
    cache: dict[Variant, list[Obj]] = {}

    def get(variant: Variant) -> list[Obj]:
        if variant not in cache:
            try:
                cache[variant] = render(variant[0], tmp_path_factory.mktemp("k8s"), variant[1])
            except KubectlMissing as missing:
                pytest.fail(str(missing), pytrace=False)
        return copy.deepcopy(cache[variant])

    return get


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def objects(request: pytest.FixtureRequest, rendered: Callable[[Variant], list[Obj]]) -> list[Obj]:
    """The objects of one overlay (with or without the observability component)."""
    variant: Variant = request.param
    return rendered(variant)


@pytest.fixture
def dev(rendered: Callable[[Variant], list[Obj]]) -> list[Obj]:
    """The dev overlay with the observability component (the most objects to break)."""
    return rendered(("dev", (OBSERVABILITY,)))


@pytest.fixture(scope="session")
def compose_doc() -> dict[str, Any]:
    """docker-compose.yml, what the manifests are compared with."""
    return compose.load_compose()
