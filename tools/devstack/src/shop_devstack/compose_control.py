"""What the demo, the load test and the end-to-end suite need from a running compose stack.

The launcher's control socket stops and starts processes and hands out the broker's AMQP URL;
a compose stack has neither. Here the same needs are met the Docker way:

- an instance is stopped and started with `docker compose stop/start <service>`, and crashed
  with a SIGKILL from the Docker host (`kill -9` of its main process, as the kernel's OOM killer
  would): Docker's restart policy starts it again and counts the restart;
- a dependency (Redis, RabbitMQ) is cut the way the launcher's fault proxy cuts it, with every
  connection dropped and new ones refused: a REJECT-with-TCP-reset rule for its port in its own
  network namespace (`nsenter -n iptables`, run as root on the Docker host), deleted to restore;
- the databases and the broker's AMQP port are reached where the stack publishes them (the
  stack of tests/compose publishes PostgreSQL and AMQP on ephemeral loopback ports);
- the broker is reached through RabbitMQ's published management API (publish to an exchange,
  look at a queue without consuming it), and the DLQ tool runs inside the payment container
  (`docker compose exec payment python -m shop_common.messaging.dlq ...`), whose environment
  holds the AMQP URL of the private network.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from shop_devstack.compose_stack import (
    DEFAULT_PROJECT,
    KEYS_RUN_DIR,
    Stack,
    StackError,
    compose_command,
    engine_answers,
)

if TYPE_CHECKING:
    from shop_devstack.running import RunningSystem

RABBITMQ_USER = "shop"  # docker-compose.yml's RABBITMQ_DEFAULT_USER / _PASS (development only)
RABBITMQ_PASSWORD = "shop-dev"
POSTGRES_USER = "postgres"  # docker-compose.yml's POSTGRES_USER / _PASSWORD (development only)
POSTGRES_PASSWORD = "postgres-dev"
VHOST = "/"
# What `cut` can cut, and the port each one serves on (docker-compose.yml).
DEPENDENCY_PORTS = {"redis": 6379, "rabbitmq": 5672}
# The long-running instances (the one-shot keygen and migrations are never restarted).
INSTANCES = ("user-1", "user-2", "catalog", "order", "payment", "gateway")


def _docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv
        ["docker", *args],  # noqa: S607 - the docker client found on PATH
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _project_services(project: str) -> dict[str, str]:
    """{service: state} of the project's containers (every one, running or not)."""
    result = subprocess.run(  # noqa: S603 - fixed argv
        # the docker client found on PATH, as everywhere in compose_stack
        [  # noqa: S607
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--format",
            '{{.Label "com.docker.compose.service"}}\t{{.State}}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    services = {}
    for line in result.stdout.splitlines():
        service, _, state = line.partition("\t")
        services[service] = state
    return services


def compose_running(project: str = DEFAULT_PROJECT) -> bool:
    """True when the project's gateway container runs (a `make compose-up` stack)."""
    if not engine_answers(timeout=5):
        return False
    return _project_services(project).get("gateway") == "running"


@dataclass(frozen=True)
class ComposeControl:
    """A running compose project: its services, its broker's management API."""

    stack: Stack
    management_url: str

    @classmethod
    def for_project(cls, project: str = DEFAULT_PROJECT) -> ComposeControl:
        """The running project (offline or not, as its containers tell: Consul or none)."""
        services = _project_services(project)
        if services.get("gateway") != "running":
            raise StackError(f"compose project {project} has no running gateway")
        stack = Stack(tuple(compose_command()), project, offline="consul" not in services)
        return cls(stack, f"http://{stack.published('rabbitmq', 15672)}")

    def published_or_none(self, service: str, port: int) -> str | None:
        """host:port where the stack publishes a container port, or None (not published)."""
        try:
            return self.stack.published(service, port)
        except StackError:
            return None

    def state(self) -> dict[str, Any]:
        """What a RunningSystem's state holds for a launcher's system, where it is published:
        the PostgreSQL admin URL (the databases are named users, orders, payments, catalog) and the
        broker's AMQP URL."""
        found: dict[str, Any] = {"database_prefix": ""}
        if postgres := self.published_or_none("postgres", 5432):
            found["postgres_admin_url"] = (
                f"postgresql://{POSTGRES_USER}:{POSTGRES_PASSWORD}@{postgres}/postgres"
            )
        if amqp := self.published_or_none("rabbitmq", 5672):
            found["amqp_url"] = f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@{amqp}/"
        return found

    @property
    def gateway_url(self) -> str:
        """The gateway's published address."""
        return f"http://{self.stack.published('gateway', 8000)}"

    def import_keys(self, run_dir: Path = KEYS_RUN_DIR) -> Path:
        """The stack's signing key in run_dir (the operator tools mint the first admin with it)."""
        self.stack.import_keys(run_dir)
        return run_dir

    # --- instances ------------------------------------------------------------------------

    async def stop(self, service: str) -> None:
        """docker compose stop <service> (SIGTERM, the container's grace period)."""
        await asyncio.to_thread(self.stack.output, "stop", service, timeout=120)

    async def start(self, service: str, within: float = 120.0) -> None:
        """docker compose start <service>, then wait until Docker reports it healthy."""
        await asyncio.to_thread(self.stack.output, "start", service, timeout=120)
        deadline = time.monotonic() + within
        while (health := await asyncio.to_thread(self.health, service)) != "healthy":
            if time.monotonic() > deadline:
                raise StackError(f"{service} not healthy {within:.0f} s after start: {health}")
            await asyncio.sleep(0.5)

    def container(self, service: str) -> str:
        """The id of the service's container; StackError when it has none."""
        container = self.stack.output("ps", "-q", "--all", service).strip()
        if not container:
            raise StackError(f"{service} has no container in project {self.stack.project}")
        return container.splitlines()[0]

    def _pid(self, service: str) -> int:
        pid = int(_docker("inspect", "-f", "{{.State.Pid}}", self.container(service)).strip())
        if pid <= 0:
            raise StackError(f"{service} is not running")
        return pid

    async def kill(self, service: str) -> None:
        """SIGKILL the container's main process from the Docker host (a crash: `docker kill`
        would count as an operator's stop, which the restart policy honours)."""
        pid = await asyncio.to_thread(self._pid, service)
        os.kill(pid, signal.SIGKILL)

    async def restarts(self, service: str) -> int:
        """How many times Docker's restart policy has started the service's container again."""
        out = await asyncio.to_thread(
            _docker, "inspect", "-f", "{{.RestartCount}}", self.container(service)
        )
        return int(out.strip())

    async def start_stopped(self) -> list[str]:
        """Start every instance that is not running (after a fault); returns their names."""
        services = await asyncio.to_thread(_project_services, self.stack.project)
        stopped = [s for s in INSTANCES if s in services and services[s] != "running"]
        for service in stopped:
            await self.start(service)
        return stopped

    # --- cutting a dependency -------------------------------------------------------------

    def _reject_rule(self, dependency: str) -> list[str]:
        port = DEPENDENCY_PORTS.get(dependency)
        if port is None:
            raise StackError(f"cannot cut {dependency!r}: one of {sorted(DEPENDENCY_PORTS)}")
        # Not on loopback: the container's own health check keeps telling the truth.
        rule = ["INPUT", "!", "-i", "lo", "-p", "tcp", "--dport", str(port)]
        return [*rule, "-j", "REJECT", "--reject-with", "tcp-reset"]

    def _iptables(self, dependency: str, action: str) -> bool:
        """Run `iptables <action> <rule>` in the dependency's network namespace; True on 0."""
        if os.geteuid() != 0 or not shutil.which("nsenter") or not shutil.which("iptables"):
            raise StackError("cutting a dependency needs root, nsenter and iptables on the host")
        pid = str(self._pid(dependency))
        argv = [
            "nsenter",
            "-t",
            pid,
            "-n",
            "iptables",
            "-w",
            action,
            *self._reject_rule(dependency),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        if action != "-C" and result.returncode != 0:
            raise StackError(f"{' '.join(argv)}: {result.stderr.strip()}")
        return result.returncode == 0

    def _cut(self, dependency: str) -> None:
        if not self._iptables(dependency, "-C"):
            self._iptables(dependency, "-I")

    def _restore(self, dependency: str) -> None:
        while self._iptables(dependency, "-C"):
            self._iptables(dependency, "-D")

    async def cut(self, dependency: str) -> None:
        """Drop every connection to the dependency and refuse new ones (until restore)."""
        await asyncio.to_thread(self._cut, dependency)

    async def restore(self, dependency: str) -> None:
        """Let connections to the dependency through again (no-op when it was not cut)."""
        await asyncio.to_thread(self._restore, dependency)

    def health(self, service: str) -> str:
        """Docker's health status of the service's container (or its state without a check)."""
        container = self.stack.output("ps", "-q", service).strip()
        if not container:
            return "not running"
        out = self.stack.output("ps", "--format", "json", service)
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):  # older Compose: one JSON array
            rows = rows[0]
        return str(rows[0].get("Health") or rows[0].get("State")) if rows else "not running"

    # --- the broker -----------------------------------------------------------------------

    def _api(self, path: str) -> str:
        return f"{self.management_url}/api/{path}"

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: dict[str, Any]
    ) -> bool:
        """Publish through the management API; True when the broker routed it to a queue."""
        vhost = urllib.parse.quote(VHOST, safe="")
        async with httpx.AsyncClient(auth=(RABBITMQ_USER, RABBITMQ_PASSWORD), timeout=15) as http:
            response = await http.post(
                self._api(f"exchanges/{vhost}/{exchange}/publish"),
                json={
                    "properties": properties,
                    "routing_key": routing_key,
                    "payload": body.decode(),
                    "payload_encoding": "string",
                },
            )
            response.raise_for_status()
            return bool(response.json().get("routed"))

    async def peek(self, queue: str, count: int = 1000) -> list[dict[str, Any]]:
        """The queue's messages, each put back where it was (reject + requeue): nothing consumed."""
        vhost = urllib.parse.quote(VHOST, safe="")
        name = urllib.parse.quote(queue, safe="")
        async with httpx.AsyncClient(auth=(RABBITMQ_USER, RABBITMQ_PASSWORD), timeout=30) as http:
            response = await http.post(
                self._api(f"queues/{vhost}/{name}/get"),
                json={"count": count, "ackmode": "reject_requeue_true", "encoding": "auto"},
            )
            response.raise_for_status()
            messages: list[dict[str, Any]] = response.json()
            return messages

    async def dlq_tool(self, *args: str) -> tuple[int, str]:
        """python -m shop_common.messaging.dlq <args>, inside the payment container."""
        argv = self.stack.argv(
            "exec", "-T", "payment", "python", "-m", "shop_common.messaging.dlq", *args
        )
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        return int(process.returncode or 0), output.decode()


def compose_system(project: str = DEFAULT_PROJECT, run_dir: Path = KEYS_RUN_DIR) -> RunningSystem:
    """The running compose project as a RunningSystem (its key imported into run_dir)."""
    from shop_devstack.running import RunningSystem

    control = ComposeControl.for_project(project)
    control.import_keys(run_dir)
    return RunningSystem(control.gateway_url, None, run_dir, state=control.state(), compose=control)


def choose_compose(flag: bool, project: str, launcher_running: bool) -> bool:
    """--compose, else a compose stack when no `make up` system runs and the project's does."""
    return flag or (not launcher_running and compose_running(project))
