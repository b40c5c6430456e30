"""docker-compose.yml checked against the Compose schema, the Settings classes and the contract."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shop_devstack.deployment import dockerfile
from shop_devstack.deployment.settings_env import env_problems, load_settings_class, settings_keys
from shop_devstack.layout import REPO_ROOT, Ports
from shop_devstack.observability.local_prometheus import metrics_job

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA_FILE = REPO_ROOT / "deploy" / "schema" / "compose-spec.json"
OFFLINE_FILE = REPO_ROOT / "deploy" / "offline" / "compose.offline.yml"
PROMETHEUS_FILE = REPO_ROOT / "deploy" / "observability" / "prometheus.yml"
MEMORY_BUDGET_MB = 2048
OBSERVABILITY_BUDGET_MB = 512  # what the observability profile may add on top
# Services that only a registry has (no Debian/PyPI package): the offline override moves them
# to this profile, which nothing enables.
REGISTRY_ONLY_PROFILE = "needs-registry"
MIGRATE_MODULE = "shop_common.migrations"  # `python -m shop_common.migrations <package>`
# Services allowed to publish ports on the host (the front door and the documented UIs).
PUBLISHED = {
    "gateway": {8000},
    "rabbitmq": {15672},
    "consul": {8500},
    "prometheus": {9090},
    "grafana": {3000},
    "jaeger": {16686},
}
# What the key wrapper (deploy/docker/with-jwt-keys.sh) exports from the mounted key volumes.
KEY_VOLUME_ENV = {
    "/jwt/public": ("JWT_PUBLIC_KEYS",),
    "/jwt/private": ("JWT_PRIVATE_KEY", "JWT_KID"),
}
_PORTS = Ports()
CONTRACT_PORTS = {
    "user_service": ("GRPC_PORT", _PORTS.user[0]),
    "order_service": ("HTTP_PORT", _PORTS.order),
    "payment_service": ("HTTP_PORT", _PORTS.payment),
    "catalog_service": ("HTTP_PORT", _PORTS.catalog),
    "web_service": ("HTTP_PORT", _PORTS.web),
    "gateway": ("HTTP_PORT", _PORTS.gateway),
}
# A service that speaks no HTTP serves /metrics on a port of its own (each container has its
# own network namespace, so both user replicas use the first replica's port of the launcher).
METRICS_PORTS = {"user_service": ("METRICS_PORT", _PORTS.user_metrics[0])}


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as data (YAML anchors and merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def schema_problems(doc: Mapping[str, Any], schema_path: Path = SCHEMA_FILE) -> list[str]:
    """Every violation of the Compose specification's JSON schema."""
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(doc)]


@dataclass(frozen=True)
class AppService:
    """A compose service built from one of our Dockerfiles."""

    name: str
    dockerfile: Path
    argv: list[str]
    env: dict[str, str]

    @property
    def package(self) -> str:
        """The service package: `python -m <package>`, or the one that
        `python -m shop_common.migrations <package>` migrates."""
        module = self.argv[self.argv.index("-m") + 1]
        if module == MIGRATE_MODULE:
            return self.argv[self.argv.index("-m") + 2]
        return module.split(".")[0]

    @property
    def metrics_port(self) -> str | None:
        """Where Prometheus scrapes its /metrics: METRICS_PORT, else its HTTP port."""
        port = self.env.get("METRICS_PORT") or self.env.get("HTTP_PORT")
        return None if port in (None, "0") else port

    @property
    def is_job(self) -> bool:
        """True for one-shot jobs (migrations, key generation)."""
        return "-m" not in self.argv or self.argv[self.argv.index("-m") + 1] == MIGRATE_MODULE


def app_services(doc: Mapping[str, Any], root: Path = REPO_ROOT) -> list[AppService]:
    """Every service with a build section, with its effective argv and environment."""
    found = []
    for name, service in doc["services"].items():
        build = service.get("build")
        if not build:
            continue
        path = root / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        stages = dockerfile.parse(path.read_text()) if path.exists() else []
        final = stages[-1] if stages else None
        cmd = [i for i in final.instructions if i.keyword == "CMD"] if final else []
        argv = service.get("command") or (dockerfile.exec_form(cmd[-1].args) if cmd else [])
        if service.get("entrypoint"):
            argv = list(service["entrypoint"]) + list(service.get("command") or [])
        env = {**(dockerfile.env_keys(final) if final else {})}
        env.pop("PATH", None)
        env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
        env.update({str(k): str(v) for k, v in (service.get("environment") or {}).items()})
        for volume in service.get("volumes") or []:
            target = volume["target"] if isinstance(volume, dict) else str(volume).split(":")[1]
            for key in KEY_VOLUME_ENV.get(target, ()):
                env.setdefault(key, "<from the key volume>")
        found.append(AppService(name, path, [str(a) for a in argv], env))
    return found


def settings_problems(doc: Mapping[str, Any]) -> list[str]:
    """Each app service's environment against its Settings class: no unknown, none missing."""
    problems = []
    for service in app_services(doc):
        if "-m" not in service.argv:
            continue
        cls = load_settings_class(f"{service.package}.settings:Settings")
        problems += env_problems(f"compose service {service.name}", service.env, settings_keys(cls))
    return problems


def contract_problems(doc: Mapping[str, Any]) -> list[str]:
    """Ports in env, healthcheck and EXPOSE equal the contract's (and the Settings default)."""
    problems = []
    for service in app_services(doc):
        if service.is_job:
            continue
        key, port = CONTRACT_PORTS[service.package]
        if service.env.get(key) != str(port):
            problems.append(
                f"{service.name}: {key}={service.env.get(key)} but the contract says {port}"
            )
        problems += _metrics_port_problems(doc, service)
        test = " ".join(doc["services"][service.name].get("healthcheck", {}).get("test", []))
        expected = (
            f"grpc://127.0.0.1:{port}" if key == "GRPC_PORT" else f"http://127.0.0.1:{port}/ready"
        )
        if expected not in test:
            problems.append(f"{service.name}: healthcheck `{test}` does not probe {expected}")
        stages = dockerfile.parse(service.dockerfile.read_text())
        exposed = {w for i in stages[-1].all("EXPOSE") for w in i.args.split()}
        if str(port) not in exposed:
            problems.append(
                f"{service.dockerfile.relative_to(REPO_ROOT)}: EXPOSE {exposed} lacks {port}"
            )
        default = settings_keys(
            load_settings_class(f"{service.package}.settings:Settings")
        ).defaults.get(key)
        if default is not None and int(str(default)) != port:
            problems.append(
                f"{service.package}.settings: {key} defaults to {default}, the contract says {port}"
            )
    return problems


def _metrics_port_problems(doc: Mapping[str, Any], service: AppService) -> list[str]:
    """A service with a separate metrics port sets it, exposes it and declares it in EXPOSE."""
    if service.package not in METRICS_PORTS:
        return []
    key, port = METRICS_PORTS[service.package]
    problems = []
    if service.env.get(key) != str(port):
        problems.append(
            f"{service.name}: {key}={service.env.get(key)} but the contract says {port}"
        )
    expose = {str(p) for p in doc["services"][service.name].get("expose", [])}
    if str(port) not in expose:
        problems.append(f"{service.name}: expose {sorted(expose)} lacks its {key} {port}")
    stages = dockerfile.parse(service.dockerfile.read_text())
    if str(port) not in {w for i in stages[-1].all("EXPOSE") for w in i.args.split()}:
        problems.append(f"{service.dockerfile.relative_to(REPO_ROOT)}: EXPOSE lacks {key} {port}")
    return problems


def _megabytes(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgG])?[bB]?", text.strip())
    if not match:
        raise ValueError(f"unreadable memory size {text!r}")
    value, unit = float(match.group(1)), (match.group(2) or "").lower()
    return value * {"k": 1 / 1024, "m": 1, "g": 1024}.get(unit, 1 / 2**20)


def memory_mb(doc: Mapping[str, Any], *, profiles: frozenset[str] = frozenset()) -> float:
    """Sum of the memory limits of the long-running services (one-shot jobs excluded)."""
    total = 0.0
    for service in doc["services"].values():
        if service.get("restart") == "no":
            continue
        if set(service.get("profiles", [])) - profiles:
            continue
        total += _megabytes(service["deploy"]["resources"]["limits"]["memory"])
    return total


def topology_problems(doc: Mapping[str, Any]) -> list[str]:
    """Healthchecks, dependency conditions, restart policies, memory, networks, published ports."""
    problems = []
    services = doc["services"]
    for name, service in services.items():
        job = service.get("restart") == "no"
        if not job and "healthcheck" not in service:
            problems.append(f"{name}: no healthcheck")
        if "restart" not in service:
            problems.append(f"{name}: no restart policy")
        if "memory" not in service.get("deploy", {}).get("resources", {}).get("limits", {}):
            problems.append(f"{name}: no memory limit")
        for dep, rule in (service.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
                continue
            wanted = (
                "service_completed_successfully"
                if services[dep].get("restart") == "no"
                else "service_healthy"
            )
            if rule.get("condition") != wanted:
                problems.append(f"{name}: depends_on {dep} should use condition {wanted}")
        published = {int(str(p).split(":")[0]) for p in service.get("ports", [])}
        if published - PUBLISHED.get(name, set()):
            problems.append(
                f"{name}: publishes {sorted(published)}; only {PUBLISHED} may be published"
            )
        if "backend" not in service.get("networks", []):
            problems.append(f"{name}: not on the private backend network")
    if not doc.get("networks", {}).get("backend", {}).get("internal"):
        problems.append("network backend must be internal: true")
    core = memory_mb(doc)
    if core > MEMORY_BUDGET_MB:
        problems.append(f"memory limits add up to {core:.0f} MB: over 2 GB")
    added = memory_mb(doc, profiles=frozenset({"observability"})) - core
    if added > OBSERVABILITY_BUDGET_MB:
        problems.append(
            f"the observability profile adds {added:.0f} MB: over {OBSERVABILITY_BUDGET_MB} MB"
        )
    for app in app_services(doc):
        if not app.is_job and f"{app.package.split('_')[0]}-migrate" in services:
            deps = services[app.name].get("depends_on", {})
            if f"{app.package.split('_')[0]}-migrate" not in deps:
                problems.append(f"{app.name}: does not wait for its migrations")
    return problems


def prometheus_problems(doc: Mapping[str, Any], path: Path = PROMETHEUS_FILE) -> list[str]:
    """Every scrape target is a compose service on its metrics port (METRICS_PORT, else
    HTTP_PORT), in the job named after its service; every app service is scraped; the rules
    directory is mounted where rule_files looks."""
    config = yaml.safe_load(path.read_text())
    jobs = {
        t: job["job_name"]
        for job in config["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    }
    problems = []
    apps = {a.name: a for a in app_services(doc) if not a.is_job}
    ports = {n: a.metrics_port for n, a in apps.items()}
    for target, job in sorted(jobs.items()):
        host, _, port = target.partition(":")
        if host == "localhost":
            continue
        if host not in doc["services"]:
            problems.append(f"prometheus target {target}: no compose service {host}")
        elif host in ports and ports[host] != port:
            problems.append(f"prometheus target {target}: {host} serves /metrics on {ports[host]}")
        elif host in apps and job != metrics_job(apps[host].package):
            problems.append(
                f"prometheus target {target}: in job {job}, not {metrics_job(apps[host].package)}"
            )
    for name, port in ports.items():
        if not port:
            problems.append(f"{name}: neither METRICS_PORT nor HTTP_PORT: no /metrics to scrape")
        elif f"{name}:{port}" not in jobs:
            problems.append(
                f"{name} serves /metrics on {port} but prometheus.yml does not scrape it"
            )
    mounts = [str(v) for v in doc["services"].get("prometheus", {}).get("volumes", [])]
    for pattern in config.get("rule_files", []):
        folder = str(Path(pattern).parent)
        if not any(m.split(":")[1] == folder for m in mounts if m.count(":") >= 1):
            problems.append(f"prometheus rule_files {pattern}: nothing is mounted at {folder}")
    return problems


_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]+)\}")


def image_problems(doc: Mapping[str, Any], root: Path = REPO_ROOT) -> list[str]:
    """Every pulled image and every build arg naming a base image is `${VAR:-official image}`,
    and a build arg's default equals the Dockerfile's own ARG default."""
    problems = []
    for name, service in doc["services"].items():
        build = service.get("build")
        if not build:
            image = str(service.get("image", ""))
            if not _DEFAULTED.fullmatch(image):
                problems.append(f"{name}: image {image!r} is not ${{VARIABLE:-official image}}")
            continue
        path = root / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        declared = dockerfile.global_args(path.read_text()) if path.exists() else {}
        args = build.get("args") or {}
        for arg, default in declared.items():
            if not arg.endswith("_IMAGE"):
                continue
            value = str(args.get(arg, ""))
            match = _DEFAULTED.fullmatch(value)
            if not match or match.group(1) != arg:
                problems.append(f"{name}: build arg {arg} is not ${{{arg}:-{default}}}")
            elif match.group(2) != default:
                problems.append(
                    f"{name}: build arg {arg} defaults to {match.group(2)}, the Dockerfile to {default}"
                )
    return problems


class _Reset:
    """A `!reset` node of a compose override."""


def _reset_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!reset", lambda loader, node: _Reset())
    Loader.add_constructor("!override", _override_value)
    return Loader


def _override_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """The value of an `!override` node (it replaces instead of merging), as plain data."""
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def load_override(path: Path = OFFLINE_FILE) -> dict[str, Any]:
    """A compose override file, `!reset` nodes kept as markers."""
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_reset_loader())  # noqa: S506
    return data


def offline_problems(doc: Mapping[str, Any], override: Mapping[str, Any]) -> list[str]:
    """The registry-free override: no Consul and nothing that waits for it, static discovery for
    every service that would use Consul, a local image for every pulled one, local base images
    and the CA secret for every build."""
    problems = []
    services = override.get("services", {})
    registry_only = {
        name
        for name, service in services.items()
        if isinstance(service, dict) and service.get("profiles") == [REGISTRY_ONLY_PROFILE]
    }
    if not isinstance(services.get("consul"), _Reset):
        problems.append("consul: not removed (consul: !reset null)")
    for name, service in doc["services"].items():
        if name == "consul" or name in registry_only:
            continue
        mine = services.get(name) or {}
        if "consul" in (service.get("depends_on") or {}) and not isinstance(
            (mine.get("depends_on") or {}).get("consul"), _Reset
        ):
            problems.append(f"{name}: still depends on consul")
        env = service.get("environment") or {}
        if (
            "CONSUL_HTTP_ADDR" in env
            and (mine.get("environment") or {}).get("CONSUL_HTTP_ADDR") != ""
        ):
            problems.append(f"{name}: CONSUL_HTTP_ADDR is not emptied (static discovery)")
        if service.get("build"):
            build = mine.get("build") or {}
            if "ca-bundle" not in (build.get("secrets") or []):
                problems.append(f"{name}: the build lacks the ca-bundle secret")
            for arg, value in (service["build"].get("args") or {}).items():
                local = str((build.get("args") or {}).get(arg, ""))
                if not local.startswith(f"${{{arg}:-shop-offline/"):
                    problems.append(f"{name}: build arg {arg} has no local default ({value})")
        elif not str(mine.get("image", "")).startswith("${") or "shop-offline/" not in str(
            mine.get("image", "")
        ):
            problems.append(f"{name}: no local image (shop-offline/...)")
    if "ca-bundle" not in (override.get("secrets") or {}):
        problems.append("secrets: ca-bundle is not declared")
    return problems
