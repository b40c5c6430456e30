"""The manifests against the code, as tests/consistency/test_compose.py checks compose: env keys
against the Settings classes, ports against the contract, probes against the apps' real
routes and grpc.health.v1, images against the compose build, the scrape config and the
observability ConfigMaps against deploy/observability. Each check is shown to catch a break."""

from __future__ import annotations

import base64
import copy
import importlib
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from grpc_health.v1 import health, health_pb2
from shop_devstack.deployment import k8s_checks
from shop_devstack.deployment.contract import APP_PACKAGES, key_files, uses
from shop_devstack.deployment.k8s_checks import OBSERVABILITY_DIR
from shop_devstack.deployment.k8s_policy import secret_problems
from shop_devstack.deployment.kubernetes import (
    K8S_DIR,
    Obj,
    effective_env,
    find,
    named,
    secret_refs,
)
from shop_devstack.deployment.settings_env import load_settings_class
from shop_devstack.layout import REPO_ROOT

APPS = {
    "order_service": "order_service.entrypoints.http",
    "payment_service": "payment_service.entrypoints.http",
    "catalog_service": "catalog_service.entrypoints.http",
    "web_service": "web_service.entrypoints.http",
    "gateway": "gateway.entrypoints.app",
}


def _container(objects: list[Obj], kind: str, name: str) -> Obj:
    found: Obj = find(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]
    return found


def test_each_environment_matches_its_settings_class(objects: list[Obj]) -> None:
    assert {p for p, _ in k8s_checks.settings_env(objects).values()} == set(APP_PACKAGES)
    assert k8s_checks.settings_problems(objects) == []


def test_settings_check_names_an_unknown_key_and_a_missing_one(dev: list[Obj]) -> None:
    find(dev, "ConfigMap", "order-service-config")["data"]["HTTP_PROT"] = "8001"
    env = _container(dev, "Deployment", "payment-service")["env"]
    env[:] = [v for v in env if v["name"] != "DATABASE_URL"]
    problems = k8s_checks.settings_problems(dev)
    assert (
        "Deployment/order-service: HTTP_PROT is not a setting of this service (typo, or a key it ignores)"
        in problems
    )
    assert "Deployment/payment-service: DATABASE_URL is not set" in problems


def test_each_service_is_given_the_url_of_exactly_what_it_uses(objects: list[Obj]) -> None:
    """user and payment open no Redis: they get no REDIS_URL (compose gives every service one)."""
    for name, (package, env) in k8s_checks.settings_env(objects).items():
        given = {k for k in env if k in {"DATABASE_URL", "REDIS_URL", "AMQP_URL"}}
        assert given == uses(package).url_keys(), name


def test_the_dev_values_load_into_each_settings_class(
    dev: list[Obj], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values parse too (ports are ints, URLs valid), with the Secrets' values filled in."""
    from shop_common.auth import generate_signing_key

    key = generate_signing_key("k8s-test")
    keys = {"JWT_PUBLIC_KEYS": f'{{"{key.kid}": {key.public_pem!r}}}'.replace("'", '"'),
            "JWT_PRIVATE_KEY": key.private_pem, "JWT_KID": key.kid}  # fmt: skip
    secrets = named(dev, "Secret")
    for name, (package, env) in k8s_checks.settings_env(dev).items():
        cls = load_settings_class(f"{package}.settings:Settings")
        for field in cls.model_fields:
            monkeypatch.delenv(field.upper(), raising=False)
        for var, value in env.items():
            secret = re.fullmatch(r"<secret (\S+)/(\S+)>", value)
            if secret:
                value = base64.b64decode(secrets[secret[1]]["data"][secret[2]]).decode()
            monkeypatch.setenv(var, keys.get(var, value))
        settings = cls().model_dump()
        assert settings["environment"] == "development", name
        assert settings["host"] == "0.0.0.0", name


def test_ports_follow_the_contract(objects: list[Obj]) -> None:
    assert k8s_checks.port_problems(objects) == []


def test_port_check_catches_a_drifted_port_and_a_service_on_the_wrong_target(
    dev: list[Obj],
) -> None:
    find(dev, "ConfigMap", "user-service-config")["data"]["GRPC_PORT"] = "50061"
    find(dev, "Service", "order-service")["spec"]["ports"][0]["targetPort"] = 9999
    problems = k8s_checks.port_problems(dev)
    assert "Deployment/user-service: GRPC_PORT=50061 but the contract says 50051" in problems
    assert "Service/order-service: no port reaches 8001" in problems


def test_probes_map_to_health_ready_and_grpc_health(objects: list[Obj]) -> None:
    assert k8s_checks.probe_problems(objects) == []


def test_probe_check_catches_a_wrong_path_and_a_grpc_probe_on_the_wrong_entry(
    dev: list[Obj],
) -> None:
    _container(dev, "Deployment", "gateway")["readinessProbe"]["httpGet"]["path"] = "/healthz"
    _container(dev, "Deployment", "user-service")["readinessProbe"]["grpc"].pop("service")
    del _container(dev, "Deployment", "catalog-service")["startupProbe"]
    problems = k8s_checks.probe_problems(dev)
    assert any(
        p.startswith("Deployment/gateway: readinessProbe is not GET /ready") for p in problems
    )
    assert any(
        p.startswith("Deployment/user-service: readinessProbe is not grpc") for p in problems
    )
    assert "Deployment/catalog-service: no startupProbe" in problems


async def test_every_probed_path_is_a_route_of_the_app(dev: list[Obj]) -> None:
    """The app answers each probed path (200, or a 503 problem before its lifespan ran), not 404."""
    paths = k8s_checks.probe_paths(dev)
    assert set(paths) == set(APPS)
    for package, module in APPS.items():
        app = importlib.import_module(module).create_app()
        transport = httpx.ASGITransport(app=app)  # no lifespan: nothing is connected
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            for path in paths[package]:
                assert (await client.get(path)).status_code in (200, 503), (package, path)
            assert (await client.get("/no-such-probe")).status_code == 404


async def test_the_user_service_serves_the_health_entry_its_readiness_probe_asks() -> None:
    """The readiness probe's grpc.health.v1 entry is the one DatabaseHealth keeps: SERVING with
    the database up, NOT_SERVING without it (and the liveness probe does not read it)."""
    from user_service.entrypoints.grpc.health import SERVICE_NAME, DatabaseHealth

    assert k8s_checks.USER_HEALTH_SERVICE == SERVICE_NAME
    servicer = health.aio.HealthServicer()
    up = True

    async def ping() -> None:
        if not up:
            raise ConnectionError("database down")

    db = DatabaseHealth(servicer, ping, interval=1.0, timeout=1.0)
    request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    assert await db.check_once()
    assert (await servicer.Check(request, None)).status == health_pb2.HealthCheckResponse.SERVING
    up = False
    assert not await db.check_once()
    status = (await servicer.Check(request, None)).status
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_images_are_the_ones_compose_builds_and_pulls(
    objects: list[Obj], compose_doc: dict[str, Any]
) -> None:
    images = k8s_checks.compose_images(compose_doc)
    assert images["order_service"] == "shop/order-service:dev"
    assert k8s_checks.image_problems(objects, compose_doc) == []


def test_image_check_catches_another_image_and_another_version(
    dev: list[Obj], compose_doc: dict[str, Any]
) -> None:
    _container(dev, "Deployment", "order-service")["image"] = "shop/order-service:latest"
    _container(dev, "StatefulSet", "postgres")["image"] = "postgres:17"
    problems = k8s_checks.image_problems(dev, compose_doc)
    assert (
        "Deployment/order-service: image shop/order-service:latest, compose shop/order-service:dev"
        in problems
    )
    assert "StatefulSet/postgres: image postgres:17, compose postgres:16-alpine" in problems


def test_prometheus_scrapes_every_service_through_dns_with_the_rules_mounted(
    dev: list[Obj],
) -> None:
    assert k8s_checks.prometheus_problems(dev) == []


def test_prometheus_check_catches_a_wrong_port_a_wrong_job_and_a_missing_service(
    dev: list[Obj], tmp_path: Path
) -> None:
    text = k8s_checks.PROMETHEUS_K8S_FILE.read_text()
    text = text.replace("port: 9101", "port: 50051").replace(
        "job_name: payment-service", "job_name: payment"
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    dev = [o for o in dev if o["metadata"]["name"] != "catalog-service-metrics"]
    problems = k8s_checks.prometheus_problems(dev, config)
    assert "job user-service: port 50051, /metrics is on 9101" in problems
    assert "job payment: no service of that name" in problems
    assert "payment-service is not scraped" in problems
    assert "job catalog-service: catalog-service-metrics is not a headless Service" in problems


@pytest.mark.parametrize(
    ("prefix", "folder", "glob"),
    [
        ("prometheus-rules", OBSERVABILITY_DIR / "rules", "*.yml"),
        ("grafana-dashboards", OBSERVABILITY_DIR / "grafana" / "dashboards", "*.json"),
        (
            "grafana-datasources",
            OBSERVABILITY_DIR / "grafana" / "provisioning" / "datasources",
            "*.yml",
        ),
        (
            "grafana-dashboard-provider",
            OBSERVABILITY_DIR / "grafana" / "provisioning" / "dashboards",
            "*.yml",
        ),
    ],
)
def test_observability_config_maps_are_the_files_compose_mounts(
    dev: list[Obj], prefix: str, folder: Path, glob: str
) -> None:
    assert k8s_checks.generated_from_files(dev, prefix, folder, glob) == []


def test_file_check_catches_a_config_map_that_drifted_from_its_file(dev: list[Obj]) -> None:
    rules = find(dev, "ConfigMap", "prometheus-rules")
    rules["data"]["alerts.yml"] += "# edited in the cluster\n"
    problems = k8s_checks.generated_from_files(
        dev, "prometheus-rules", OBSERVABILITY_DIR / "rules", "*.yml"
    )
    assert len(problems) == 1 and "differs from" in problems[0]


def test_dev_renders_every_secret_it_reads_with_the_key_files_the_wrapper_reads(
    dev: list[Obj],
) -> None:
    assert key_files() == {
        "/jwt/public": {"jwt_public_keys.json"},
        "/jwt/private": {"jwt_private_key.pem", "jwt_kid"},
    }
    assert secret_problems(dev, key_files()) == []


def test_secret_check_catches_a_missing_key_and_a_key_file_the_wrapper_would_not_find(
    dev: list[Obj],
) -> None:
    del find(dev, "Secret", "order-service-secrets")["data"]["REDIS_URL"]
    private = find(dev, "Secret", "jwt-private")["data"]
    private["kid"] = private.pop("jwt_kid")
    problems = secret_problems(dev, key_files())
    assert any(
        p.startswith("Deployment/order-service: REDIS_URL reads a missing") for p in problems
    )
    assert "Deployment/gateway: the Secret at /jwt/private lacks ['jwt_kid']" in problems


def test_prod_renders_no_secret_and_documents_each_one_it_reads(
    rendered: Any,
) -> None:
    """Production's Secrets come from the cluster's store: none is rendered, and the list in
    overlays/prod/kustomization.yaml names each one the workloads read, with its keys."""
    prod = rendered(("prod", ()))
    assert [o for o in prod if o["kind"] == "Secret"] == []
    text = (K8S_DIR / "overlays" / "prod" / "kustomization.yaml").read_text()
    documented = {
        name: set(keys.split()) for name, keys in re.findall(r"^#   ([\w-]+) +(.+)$", text, re.M)
    }
    refs = secret_refs(prod)
    assert set(documented) == set(refs)
    for name, keys in refs.items():
        assert keys <= documented[name], name
    for name, files in (("jwt-public", "/jwt/public"), ("jwt-private", "/jwt/private")):
        assert documented[name] == key_files()[files], name


def test_no_private_key_is_committed() -> None:
    """The dev overlay's key pair is made on the machine into a git-ignored folder, as compose's
    keygen job makes it at start; deploy/keys holds the generator only."""
    tracked = subprocess.run(
        ["git", "ls-files", "deploy"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and not [
        f for f in tracked if "PRIVATE KEY-----" in (REPO_ROOT / f).read_text(errors="ignore")
    ]
    assert (K8S_DIR / "overlays" / "dev" / ".gitignore").read_text().split() == ["keys/"]


def test_config_values_are_plain_settings_not_secrets(objects: list[Obj]) -> None:
    """URLs with credentials and signing secrets come from Secrets, never from a ConfigMap."""
    for name, (_, env) in k8s_checks.settings_env(objects).items():
        for key in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "PAGE_TOKEN_SECRET"):
            if key in env:
                assert env[key].startswith("<secret "), (name, key)


def test_effective_env_reports_a_config_map_that_is_not_rendered(dev: list[Obj]) -> None:
    c = copy.deepcopy(_container(dev, "Deployment", "payment-service"))
    c["envFrom"] = [{"configMapRef": {"name": "nowhere"}}]
    assert any(k.startswith("<missing") for k in effective_env(c, dev))


def test_the_k8s_scrape_config_is_composes_with_dns_discovery() -> None:
    """Same jobs, rules and intervals as deploy/observability/prometheus.yml; only how the
    targets are found differs (compose names there, headless Services here)."""
    import yaml

    k8s = yaml.safe_load(k8s_checks.PROMETHEUS_K8S_FILE.read_text())
    ours = yaml.safe_load((OBSERVABILITY_DIR / "prometheus.yml").read_text())
    assert k8s["global"] == ours["global"]
    assert k8s["rule_files"] == ours["rule_files"]
    assert [j["job_name"] for j in k8s["scrape_configs"]] == [
        j["job_name"] for j in ours["scrape_configs"]
    ]


def test_prometheus_and_jaeger_run_the_repository_files(dev: list[Obj]) -> None:
    prometheus = find(dev, "ConfigMap", "prometheus-config")["data"]
    assert prometheus == {"prometheus.yml": k8s_checks.PROMETHEUS_K8S_FILE.read_text()}
    jaeger = find(dev, "ConfigMap", "jaeger-config")["data"]
    assert jaeger == {"config.yml": (OBSERVABILITY_DIR / "jaeger.yml").read_text()}
