"""docker-compose.yml against the Compose specification, the Settings classes and the contract.

No Docker engine runs here, so these checks are what keeps the compose file true.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict
from shop_devstack.deployment import compose
from shop_devstack.deployment.settings_env import env_problems, settings_keys
from shop_devstack.layout import REPO_ROOT

APP_PACKAGES = (
    "user_service",
    "order_service",
    "payment_service",
    "catalog_service",
    "web_service",
    "gateway",
)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return compose.load_compose()


def test_compose_file_validates_against_the_compose_spec_schema(doc: dict[str, Any]) -> None:
    assert compose.schema_problems(doc) == []


def test_schema_check_rejects_what_docker_compose_would_reject(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["services"]["order"]["depends_on"]["payment"] = {"condition": "service_ready"}
    broken["services"]["redis"]["helthcheck"] = {"test": ["CMD", "true"]}
    problems = compose.schema_problems(broken)
    assert any("helthcheck" in p for p in problems)
    assert any("depends_on" in p for p in problems)


def _services_of(package: str, doc: dict[str, Any]) -> list[compose.AppService]:
    return [s for s in compose.app_services(doc) if "-m" in s.argv and s.package == package]


@pytest.mark.parametrize("package", APP_PACKAGES)
def test_each_service_environment_matches_its_settings_class(
    package: str, doc: dict[str, Any]
) -> None:
    pytest.importorskip(f"{package}.settings", reason=f"{package} has not landed yet")
    services = _services_of(package, doc)
    assert services, f"no compose service runs {package}"
    for service in services:
        keys = settings_keys(compose.load_settings_class(f"{package}.settings:Settings"))
        assert env_problems(service.name, service.env, keys) == []


@pytest.mark.parametrize("package", APP_PACKAGES)
def test_each_service_environment_loads_into_its_settings(
    package: str, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values parse too (ports are ints, URLs valid), not only the key names."""
    pytest.importorskip(f"{package}.settings", reason=f"{package} has not landed yet")
    from shop_common.auth import generate_signing_key

    key = generate_signing_key("compose-test")
    placeholders = {
        "JWT_PUBLIC_KEYS": f'{{"{key.kid}": {key.public_pem!r}}}'.replace("'", '"'),
        "JWT_PRIVATE_KEY": key.private_pem,
        "JWT_KID": key.kid,
    }
    cls = compose.load_settings_class(f"{package}.settings:Settings")
    for service in _services_of(package, doc):
        for name in list(cls.model_fields):
            monkeypatch.delenv(name.upper(), raising=False)
        for name, value in service.env.items():
            monkeypatch.setenv(name, placeholders.get(name, value))
        settings = cls()
        assert settings.model_dump()  # constructed without a validation error
        if not service.is_job:  # other containers must reach it: not only its own loopback
            assert settings.model_dump().get("host") == "0.0.0.0", f"{service.name} HOST"


class _ExampleSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")
    http_port: int = 8001
    user_service_addresses: str


def test_settings_check_reports_unknown_and_missing_keys() -> None:
    problems = env_problems("svc", {"HTTP_PROT": "8001"}, settings_keys(_ExampleSettings))
    assert problems == [
        "svc: HTTP_PROT is not a setting of this service (typo, or a key it ignores)",
        "svc: required setting USER_SERVICE_ADDRESSES is missing",
    ]
    assert (
        env_problems("svc", {"USER_SERVICE_ADDRESSES": "a:1"}, settings_keys(_ExampleSettings))
        == []
    )


def test_ports_and_healthchecks_follow_the_contract(doc: dict[str, Any]) -> None:
    for package in APP_PACKAGES:
        pytest.importorskip(f"{package}.settings", reason=f"{package} has not landed yet")
    assert compose.contract_problems(doc) == []


def test_contract_check_catches_a_port_that_drifted(doc: dict[str, Any]) -> None:
    pytest.importorskip("user_service.settings", reason="user_service has not landed yet")
    drifted = copy.deepcopy(doc)
    drifted["services"]["user-1"]["environment"]["GRPC_PORT"] = "50061"
    for name in ("user-2", "order", "payment", "catalog", "web", "gateway"):
        drifted["services"].pop(name)
    assert any("GRPC_PORT=50061" in p for p in compose.contract_problems(drifted))


def test_every_app_service_names_where_its_metrics_are_scraped(doc: dict[str, Any]) -> None:
    metrics = {a.name: a.metrics_port for a in compose.app_services(doc) if not a.is_job}
    assert metrics == {
        "user-1": "9101",
        "user-2": "9101",
        "order": "8001",
        "payment": "8002",
        "catalog": "8003",
        "web": "8004",
        "gateway": "8000",
    }


def test_contract_check_catches_a_user_replica_without_its_metrics_port(
    doc: dict[str, Any],
) -> None:
    broken = copy.deepcopy(doc)
    broken["services"]["user-1"]["environment"].pop("METRICS_PORT")
    broken["services"]["user-2"]["expose"] = ["50051"]
    problems = compose.contract_problems(broken)
    assert "user-1: METRICS_PORT=None but the contract says 9101" in problems
    assert any(
        p.startswith("user-2: expose ['50051'] lacks its METRICS_PORT 9101") for p in problems
    )


def test_prometheus_check_catches_a_target_on_the_wrong_metrics_port(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "scrape_configs:\n"
        "  - job_name: user-service\n"
        "    static_configs: [{targets: ['user-1:50051', 'user-2:9101']}]\n"
    )
    problems = compose.prometheus_problems(doc, config)
    assert "prometheus target user-1:50051: user-1 serves /metrics on 9101" in problems
    assert not any(p.startswith("prometheus target user-2:9101") for p in problems)


def test_healthchecks_dependencies_restart_networks_and_memory(doc: dict[str, Any]) -> None:
    assert compose.topology_problems(doc) == []


def test_the_stack_fits_in_two_gigabytes_and_observability_in_half_a_gigabyte_more(
    doc: dict[str, Any],
) -> None:
    core = compose.memory_mb(doc)
    with_observability = compose.memory_mb(doc, profiles=frozenset({"observability"}))
    assert core <= compose.MEMORY_BUDGET_MB
    assert core < with_observability <= core + compose.OBSERVABILITY_BUDGET_MB


def test_observability_profile_has_prometheus_jaeger_and_grafana(doc: dict[str, Any]) -> None:
    profiled = {n for n, s in doc["services"].items() if "observability" in s.get("profiles", [])}
    assert profiled == {"prometheus", "jaeger", "grafana"}
    # Traces are exported only when the operator names the endpoint (empty: no exporter).
    for service in compose.app_services(doc):
        if not service.is_job:
            assert service.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"


def test_topology_check_catches_a_published_database_and_a_missing_healthcheck(
    doc: dict[str, Any],
) -> None:
    broken = copy.deepcopy(doc)
    broken["services"]["postgres"]["ports"] = ["5432:5432"]
    del broken["services"]["redis"]["healthcheck"]
    broken["services"]["order"]["depends_on"]["user-1"] = {"condition": "service_started"}
    problems = compose.topology_problems(broken)
    assert any(p.startswith("postgres: publishes") for p in problems)
    assert "redis: no healthcheck" in problems
    assert any("order: depends_on user-1" in p for p in problems)


def test_prometheus_scrapes_every_metrics_endpoint(doc: dict[str, Any]) -> None:
    assert compose.prometheus_problems(doc) == []


def test_prometheus_check_catches_a_wrong_port_a_wrong_job_and_unmounted_rules(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    config = yaml.safe_load(compose.PROMETHEUS_FILE.read_text())
    for job in config["scrape_configs"]:
        if job["job_name"] == "payment-service":
            job["job_name"] = "payment"
        if job["job_name"] == "order-service":
            job["static_configs"] = [{"targets": ["order:9999"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    broken = copy.deepcopy(doc)
    broken["services"]["prometheus"]["volumes"] = broken["services"]["prometheus"]["volumes"][:1]
    problems = compose.prometheus_problems(broken, path)
    assert "prometheus target payment:8002: in job payment, not payment-service" in problems
    assert "prometheus target order:9999: order serves /metrics on 8001" in problems
    assert "order serves /metrics on 8001 but prometheus.yml does not scrape it" in problems
    assert any(p.startswith("prometheus rule_files") for p in problems)


def test_postgres_init_creates_each_database_and_role_the_services_use(doc: dict[str, Any]) -> None:
    script = (REPO_ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    created = {
        (db, role, password)
        for db, role, password in re.findall(
            r'^create (\w+) (\w+) "\$\{\w+:-([^}]+)\}"', script, re.M
        )
    }
    used = set()
    for service in compose.app_services(doc):
        url = service.env.get("DATABASE_URL")
        if url:
            match = re.fullmatch(r"postgresql\+asyncpg://(\w+):([^@]+)@postgres:5432/(\w+)", url)
            assert match, f"{service.name}: unexpected DATABASE_URL {url}"
            role, password, db = match.groups()
            used.add((db, role, password))
    assert used == created
    assert {db for db, _, _ in used} == {"users", "orders", "payments", "catalog"}


def test_every_image_is_a_variable_defaulting_to_the_official_one(doc: dict[str, Any]) -> None:
    assert compose.image_problems(doc) == []


def test_image_check_catches_a_fixed_image_and_a_drifted_base_default(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["services"]["redis"]["image"] = "redis:7-alpine"
    broken["services"]["order"]["build"] = {
        **broken["services"]["order"]["build"],
        "args": {"PYTHON_IMAGE": "${PYTHON_IMAGE:-python:3.12-slim}"},
    }
    problems = compose.image_problems(broken)
    assert any(p.startswith("redis: image 'redis:7-alpine'") for p in problems)
    assert any("order: build arg PYTHON_IMAGE defaults to python:3.12-slim" in p for p in problems)
    assert any("order: build arg UV_IMAGE is not" in p for p in problems)


def test_offline_override_runs_without_consul_and_with_local_images(doc: dict[str, Any]) -> None:
    assert compose.offline_problems(doc, compose.load_override()) == []


def test_offline_check_catches_a_leftover_consul_dependency(doc: dict[str, Any]) -> None:
    override = copy.deepcopy(compose.load_override())
    del override["services"]["gateway"]["depends_on"]
    del override["services"]["postgres"]
    del override["services"]["grafana"]  # neither a local image nor out of the profile
    override["services"]["order"]["environment"] = {}
    problems = compose.offline_problems(doc, override)
    assert "gateway: still depends on consul" in problems
    assert "postgres: no local image (shop-offline/...)" in problems
    assert "order: CONSUL_HTTP_ADDR is not emptied (static discovery)" in problems
    assert "grafana: no local image (shop-offline/...)" in problems
    assert "jaeger: no local image (shop-offline/...)" not in problems
