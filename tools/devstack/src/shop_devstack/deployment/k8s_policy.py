"""Policies every rendered deploy/k8s object must follow, and the network each service gets.

policy_problems: limits, non-root, hardening, tagged images, PDBs, ServiceAccounts and
NetworkPolicies. network_problems: a default deny, only the gateway open to the outside, and
each service reaching exactly DNS plus what shop_devstack.deployment.contract.uses derives
from its code and Settings. tests/k8s feeds each a broken object to prove it says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shop_devstack.deployment.contract import (
    APP_PACKAGES,
    INFRASTRUCTURE_PORTS,
    callers_of,
    service_name,
    uses,
)
from shop_devstack.deployment.kubernetes import (
    Obj,
    containers,
    mount_paths,
    named,
    pod_labels,
    pod_spec,
    ref,
    selects,
    workloads,
)

# Containers allowed a writable root filesystem, and why (every other one is read-only).
WRITABLE_ROOT = {"rabbitmq": "the image's entry point writes its configuration under /etc"}
DNS = ("dns", 53)
# What a component adds on top of a service's own needs: the observability one sends traces.
TRACING = {("jaeger", 4317), ("jaeger", 4318)}
SCRAPER = "prometheus"
NAME = "app.kubernetes.io/name"


def policy_problems(objects: Sequence[Obj]) -> list[str]:
    """Every rule of the module docstring, one line per object that breaks one."""
    problems = []
    for obj in workloads(objects):
        problems += _pod_problems(obj)
        for c in containers(obj):
            problems += _container_problems(ref(obj), c)
    accounts = named(objects, "ServiceAccount")
    pdbs = [o["spec"]["selector"] for o in objects if o.get("kind") == "PodDisruptionBudget"]
    hpas = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]["maxReplicas"]
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
    }
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    for name, obj in named(objects, "Deployment").items():
        labels = pod_labels(obj)
        most = max(obj["spec"].get("replicas", 1), hpas.get(name, 0))
        if most > 1 and not any(selects(s, labels) for s in pdbs):
            problems.append(f"Deployment/{name}: {most} replicas and no PodDisruptionBudget")
        account = pod_spec(obj).get("serviceAccountName")
        if not account or account == "default" or account not in accounts:
            problems.append(f"Deployment/{name}: no ServiceAccount of its own ({account})")
        elif accounts[account].get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{account}: automountServiceAccountToken is not false")
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)
        ]
        if not own:
            problems.append(f"Deployment/{name}: no NetworkPolicy selects its pods")
    return problems


def _pod_problems(obj: Obj) -> list[str]:
    spec, where = pod_spec(obj), ref(obj)
    security = spec.get("securityContext", {})
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: the pod mounts a service account token")
    if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append(f"{where}: shares a host namespace")
    return problems


def _container_problems(where: str, c: Obj) -> list[str]:
    name = f"{where} container {c['name']}"
    security: dict[str, Any] = c.get("securityContext", {})
    problems = []
    resources = c.get("resources", {})
    for part in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(part, {}))
        if missing:
            problems.append(f"{name}: no {part} for {sorted(missing)}")
    image = str(c.get("image", ""))
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        problems.append(f"{name}: image {image!r} has no fixed tag")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation is not false")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append(f"{name}: does not drop ALL capabilities")
    if security.get("privileged"):
        problems.append(f"{name}: privileged")
    if security.get("readOnlyRootFilesystem") is not True and c["name"] not in WRITABLE_ROOT:
        problems.append(f"{name}: the root filesystem is writable")
    return problems


def root_problems(objects: Sequence[Obj]) -> list[str]:
    """Every container runs as a non-root user: runAsNonRoot and a non-zero runAsUser, set on
    the container or inherited from the pod."""
    problems = []
    for obj in workloads(objects):
        pod = pod_spec(obj).get("securityContext", {})
        for c in containers(obj):
            mine = {**pod, **c.get("securityContext", {})}
            if mine.get("runAsNonRoot") is not True or mine.get("runAsUser", 0) == 0:
                problems.append(f"{ref(obj)} container {c['name']}: may run as root")
    return problems


def _peers(rule: Obj, direction: str) -> set[tuple[str, int]]:
    """(who, port) pairs a rule allows: pods by their name label (or `key=value` of another
    label), `dns`, `*` (anyone), or for an ipBlock the infrastructure its port belongs to
    (managed services outside the cluster)."""
    by_port = {port: name for name, port in INFRASTRUCTURE_PORTS.items()}
    peers = rule.get("to" if direction == "egress" else "from")
    found = set()
    for port in [p["port"] for p in rule.get("ports", [])] or [0]:
        for peer in peers or [{}]:
            if "namespaceSelector" in peer and port == DNS[1]:
                found.add(DNS)
            elif "ipBlock" in peer:
                found.add((by_port.get(port, peer["ipBlock"]["cidr"]), port))
            elif "podSelector" in peer and "namespaceSelector" not in peer:
                found |= {(who, port) for who in _pods(peer["podSelector"])}
            else:
                found.add(("*", port))
    return found


def _pods(selector: Obj) -> set[str]:
    """Names of the pods a selector picks (`key=value` for a label other than the name)."""
    labels = selector.get("matchLabels") or {}
    if NAME in labels:
        return {labels[NAME]}
    names = {
        value
        for e in selector.get("matchExpressions") or []
        if e["key"] == NAME and e["operator"] == "In"
        for value in e["values"]
    }
    return names or ({f"{k}={v}" for k, v in labels.items()} if labels else {"*"})


def allowed(objects: Sequence[Obj], labels: dict[str, str], direction: str) -> set[tuple[str, int]]:
    """The union of what every NetworkPolicy selecting these pod labels allows one way."""
    found: set[tuple[str, int]] = set()
    for policy in (o for o in objects if o.get("kind") == "NetworkPolicy"):
        if selects(policy["spec"]["podSelector"], labels):
            for rule in policy["spec"].get(direction, []):
                found |= _peers(rule, direction)
    return found


def network_problems(objects: Sequence[Obj]) -> list[str]:
    """Default deny; ingress from anyone only to the gateway; each service's egress exactly DNS
    and what it uses, its ingress exactly its callers (Prometheus and Jaeger when the
    observability component is in)."""
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    problems = []
    if not any(p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
               and not p["spec"].get("egress") and len(p["spec"].get("policyTypes", [])) == 2
               for p in policies):  # fmt: skip
        problems.append("no default-deny NetworkPolicy (podSelector {}, both directions, no rule)")
    deployments = named(objects, "Deployment")
    observed = SCRAPER in deployments
    for workload in workloads(objects):
        labels = pod_labels(workload)
        open_to = {p for p in allowed(objects, labels, "ingress") if p[0] == "*"}
        if open_to and labels.get(NAME) != "gateway":
            problems.append(f"{ref(workload)}: reachable from anywhere on {sorted(open_to)}")
    for package in APP_PACKAGES:
        if service_name(package) not in deployments:
            problems.append(f"no Deployment {service_name(package)}")
            continue
        obj = deployments[service_name(package)]
        used = uses(package)
        want = {DNS} | {(i, INFRASTRUCTURE_PORTS[i]) for i in used.infrastructure}
        want |= set(used.upstreams.items()) | (TRACING if observed else set())
        got = allowed(objects, pod_labels(obj), "egress")
        problems += [f"{ref(obj)}: egress to {p} it does not use" for p in sorted(got - want)]
        problems += [f"{ref(obj)}: no egress to {p} it uses" for p in sorted(want - got)]
        port = next(iter(c["containerPort"] for c in pod_spec(obj)["containers"][0]["ports"]))
        callers = {("*", port)} if package == "gateway" else set(callers_of(package).items())
        ingress = {p for p in allowed(objects, pod_labels(obj), "ingress") if p[0] != SCRAPER}
        problems += [
            f"{ref(obj)}: ingress from {p} that never calls it" for p in sorted(ingress - callers)
        ]
        problems += [
            f"{ref(obj)}: no ingress from its caller {p}" for p in sorted(callers - ingress)
        ]
    return problems


def infrastructure_problems(objects: Sequence[Obj]) -> list[str]:
    """PostgreSQL, Redis and RabbitMQ (where they run in the cluster) let in exactly the services
    that use them, on their port (and Prometheus on RabbitMQ's metrics port)."""
    problems = []
    for name, obj in {**named(objects, "StatefulSet"), **named(objects, "Deployment")}.items():
        if name not in INFRASTRUCTURE_PORTS:
            continue
        port = INFRASTRUCTURE_PORTS[name]
        want = {(service_name(p), port) for p in APP_PACKAGES if name in uses(p).infrastructure}
        got = {p for p in allowed(objects, pod_labels(obj), "ingress") if p[0] != SCRAPER}
        problems += [
            f"{ref(obj)}: ingress from {p} that does not use it" for p in sorted(got - want)
        ]
        problems += [f"{ref(obj)}: no ingress from {p}, which uses it" for p in sorted(want - got)]
    return problems


def secret_problems(objects: Sequence[Obj], key_files: dict[str, set[str]]) -> list[str]:
    """Every Secret a workload reads is rendered with the keys it reads, and a Secret mounted
    at a key folder (/jwt/public, /jwt/private) holds the files the key wrapper reads there."""
    secrets = named(objects, "Secret")
    problems = []
    for obj in workloads(objects):
        for c in containers(obj):
            for var in c.get("env", []):
                key_ref = var.get("valueFrom", {}).get("secretKeyRef")
                data = secrets.get(key_ref["name"], {}).get("data", {}) if key_ref else {}
                if key_ref and key_ref["key"] not in data:
                    problems.append(f"{ref(obj)}: {var['name']} reads a missing {key_ref}")
            for path, volume in mount_paths(obj, c).items():
                if "secret" not in volume:
                    continue
                data = secrets.get(volume["secret"]["secretName"], {}).get("data", {})
                missing = key_files.get(path, set()) - set(data)
                if not data or missing:
                    problems.append(f"{ref(obj)}: the Secret at {path} lacks {sorted(missing)}")
    return problems
