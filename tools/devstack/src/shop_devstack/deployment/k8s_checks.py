"""The rendered deploy/k8s against the code: settings, ports, probes, images, scrape config.

The same contract as docker-compose.yml (shop_devstack.deployment.contract) and the same
Settings reading (settings_env); tests/k8s asserts that every function here returns no problem
for each overlay, and that each one reports a deliberately broken object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from shop_devstack.deployment import compose
from shop_devstack.deployment.contract import (
    CONTRACT_PORTS,
    KEY_VOLUME_ENV,
    METRICS_PORTS,
    metrics_port,
    service_name,
    uses,
)
from shop_devstack.deployment.kubernetes import (
    Obj,
    app_workloads,
    containers,
    effective_env,
    mount_paths,
    named,
    pod_spec,
    selects,
    workloads,
)
from shop_devstack.deployment.settings_env import env_problems, load_settings_class, settings_keys
from shop_devstack.layout import REPO_ROOT

OBSERVABILITY_DIR = REPO_ROOT / "deploy" / "observability"
PROMETHEUS_K8S_FILE = OBSERVABILITY_DIR / "prometheus-k8s.yml"
USER_HEALTH_SERVICE = "shop.user.v1.UserService"  # user_service.entrypoints.grpc.health
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]+)\}")


def settings_env(objects: Sequence[Obj]) -> dict[str, tuple[str, dict[str, str]]]:
    """Workload name → (package, the variables its container gets, the key files' included)."""
    found = {}
    for app in app_workloads(objects):
        env = effective_env(app.container, objects)
        for path in mount_paths(app.obj, app.container):
            for key in KEY_VOLUME_ENV.get(path, ()):
                env.setdefault(key, "<from the key volume>")
        found[app.name] = (app.package, env)
    return found


def required_keys(package: str) -> set[str]:
    """What a deployment must set, beyond the Settings' own required fields: the listen address
    and ports, the URL of everything it uses, its upstreams, the keys of the JWTs, and every
    secret the service ships a development default for (refused outside development)."""
    keys = settings_keys(load_settings_class(f"{package}.settings:Settings"))
    needed = set(keys.required) | {"HOST", "ENVIRONMENT", "JWT_PUBLIC_KEYS"}
    needed.add(CONTRACT_PORTS[package][0])
    needed |= {METRICS_PORTS[package][0]} if package in METRICS_PORTS else set()
    needed |= uses(package).url_keys()
    needed |= uses(package).address_keys
    needed |= {"PAGE_TOKEN_SECRET"} & keys.accepted
    if package == "gateway":
        needed |= {"JWT_PRIVATE_KEY", "JWT_KID"}
    return needed


def settings_problems(objects: Sequence[Obj]) -> list[str]:
    """No key the Settings class does not read; every required key present (required_keys)."""
    problems = []
    for name, (package, env) in settings_env(objects).items():
        keys = settings_keys(load_settings_class(f"{package}.settings:Settings"))
        problems += env_problems(name, env, keys)
        problems += [f"{name}: {k} is not set" for k in sorted(required_keys(package) - set(env))]
        problems += [
            f"{name}: {k} comes from nowhere ({v})" for k, v in env.items() if "<missing" in k
        ]
    return problems


def port_problems(objects: Sequence[Obj]) -> list[str]:
    """The listen and metrics ports of the env, the container ports, the Services and the
    Dockerfile's EXPOSE are the contract's (which the Settings defaults follow: test_compose)."""
    problems = []
    services = named(objects, "Service")
    for app in app_workloads(objects):
        if app.is_job:
            continue
        env = effective_env(app.container, objects)
        declared = {p.get("name"): p["containerPort"] for p in app.container.get("ports", [])}
        wanted = [CONTRACT_PORTS[app.package]]
        wanted += [METRICS_PORTS[app.package]] if app.package in METRICS_PORTS else []
        for key, port in wanted:
            if env.get(key) != str(port):
                problems.append(f"{app.name}: {key}={env.get(key)} but the contract says {port}")
            if port not in declared.values():
                problems.append(f"{app.name}: no container port {port} ({key})")
        defaults = settings_keys(load_settings_class(f"{app.package}.settings:Settings")).defaults
        key, main = CONTRACT_PORTS[app.package]
        if int(str(defaults.get(key, main))) != main:
            problems.append(
                f"{app.package}.settings: {key} defaults to {defaults[key]}, not {main}"
            )
        service = services.get(service_name(app.package))
        if service is None:
            problems.append(f"{app.name}: no Service {service_name(app.package)}")
        elif not any(_target(p, declared) == main for p in service["spec"]["ports"]):
            problems.append(f"Service/{service_name(app.package)}: no port reaches {main}")
    return problems


def _target(port: Mapping[str, Any], declared: Mapping[str | None, int]) -> int | None:
    target = port.get("targetPort", port["port"])
    return declared.get(target) if isinstance(target, str) else int(target)


def probe_problems(objects: Sequence[Obj]) -> list[str]:
    """HTTP services: startup and liveness GET /health, readiness GET /ready, on the HTTP port.
    The user service: native gRPC probes (grpc.health.v1) on GRPC_PORT, readiness on the
    UserService entry that follows the database."""
    problems = []
    for app in app_workloads(objects):
        if app.is_job:
            continue
        c, (key, port) = app.container, CONTRACT_PORTS[app.package]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind not in c:
                problems.append(f"{app.name}: no {kind}")
        if key == "GRPC_PORT":
            for kind, service in (("startupProbe", ""), ("readinessProbe", USER_HEALTH_SERVICE)):
                grpc = c.get(kind, {}).get("grpc")
                if not grpc or grpc["port"] != port or grpc.get("service", "") != service:
                    problems.append(f"{app.name}: {kind} is not grpc {port} {service!r}: {grpc}")
            continue
        for kind, path in (("startupProbe", "/health"), ("livenessProbe", "/health"),
                           ("readinessProbe", "/ready")):  # fmt: skip
            get = c.get(kind, {}).get("httpGet") or {}
            target = get.get("port")
            if get.get("path") != path or ports.get(target, target) != port:
                problems.append(f"{app.name}: {kind} is not GET {path} on {port}: {get}")
    return problems


def probe_paths(objects: Sequence[Obj]) -> dict[str, set[str]]:
    """Package → the HTTP paths its probes request (tests/k8s asks the app for each)."""
    paths: dict[str, set[str]] = {}
    for app in app_workloads(objects):
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = app.container.get(kind, {}).get("httpGet")
            if get:
                paths.setdefault(app.package, set()).add(get["path"])
    return paths


def compose_images(doc: Mapping[str, Any]) -> dict[str, str]:
    """What compose builds (package → image) and pulls (service → default image)."""
    images = {a.package: str(doc["services"][a.name]["image"]) for a in compose.app_services(doc)
              if "-m" in a.argv}  # fmt: skip
    for name, service in doc["services"].items():
        match = _DEFAULTED.fullmatch(str(service.get("image", "")))
        if match and not service.get("build"):
            images[name] = match.group(2)
    return images


def image_problems(objects: Sequence[Obj], doc: Mapping[str, Any]) -> list[str]:
    """Our containers run the images compose builds; PostgreSQL, Redis, RabbitMQ, Prometheus,
    Grafana and Jaeger run compose's default images (the same versions)."""
    images = compose_images(doc)
    problems = []
    apps = {id(a.obj): a.package for a in app_workloads(objects)}
    for obj in workloads(objects):
        for c in containers(obj):
            want = images.get(apps.get(id(obj)) or c["name"])
            if want is None:
                problems.append(f"{obj['kind']}/{c['name']}: no compose image to compare with")
            elif c.get("image") != want:
                problems.append(
                    f"{obj['kind']}/{c['name']}: image {c.get('image')}, compose {want}"
                )
    return problems


def prometheus_problems(objects: Sequence[Obj], path: Path = PROMETHEUS_K8S_FILE) -> list[str]:
    """Each job finds its service's pods through a headless Service selecting them, on the
    service's metrics port; every service is scraped; the rules folder is mounted where
    rule_files looks, from the ConfigMap of deploy/observability/rules."""
    config = yaml.safe_load(path.read_text())
    services = named(objects, "Service")
    deployments = {a.package: a.obj for a in app_workloads(objects) if not a.is_job}
    problems = []
    scraped = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                package = next((p for p in deployments if service_name(p) == job["job_name"]), None)
                service = services.get(name)
                if package is None:
                    problems.append(f"job {job['job_name']}: no service of that name")
                    continue
                if service is None or service["spec"].get("clusterIP") != "None":
                    problems.append(f"job {job['job_name']}: {name} is not a headless Service")
                    continue
                labels = deployments[package]["spec"]["template"]["metadata"]["labels"]
                if not selects({"matchLabels": service["spec"]["selector"]}, labels):
                    problems.append(f"job {job['job_name']}: {name} does not select its pods")
                if sd["port"] != metrics_port(package):
                    problems.append(
                        f"job {job['job_name']}: port {sd['port']}, /metrics is on {metrics_port(package)}"
                    )
                scraped.add(package)
    problems += [f"{service_name(p)} is not scraped" for p in sorted(set(deployments) - scraped)]
    prometheus = named(objects, "Deployment").get("prometheus")
    if prometheus:
        mounts = mount_paths(prometheus, pod_spec(prometheus)["containers"][0])
        for pattern in config.get("rule_files", []):
            volume = mounts.get(str(Path(pattern).parent), {})
            if not str(volume.get("configMap", {}).get("name", "")).startswith("prometheus-rules"):
                problems.append(f"rule_files {pattern}: the rules ConfigMap is not mounted there")
    return problems


def generated_from_files(objects: Sequence[Obj], prefix: str, folder: Path, glob: str) -> list[str]:
    """The ConfigMap named `prefix-<hash>` holds exactly the files of folder/glob, byte for byte
    (generated from them, not a copy that could drift)."""
    maps = [o for n, o in named(objects, "ConfigMap").items() if n.rsplit("-", 1)[0] == prefix]
    if len(maps) != 1:
        return [f"{len(maps)} ConfigMaps {prefix}-<hash>"]
    data = maps[0].get("data", {})
    files = {p.name: p.read_text() for p in sorted(folder.glob(glob))}
    if data != files:
        return [f"ConfigMap {prefix}: {sorted(data)} differs from {folder}/{glob} {sorted(files)}"]
    return []
