"""What the demo, the load test and the end-to-end suite need from a running compose stack.

The launcher's control socket stops and starts processes and hands out the broker's AMQP URL;
a compose stack has neither. Here the same needs are met the Docker way:

- an instance is stopped and started with `docker compose stop/start <service>`;
- the broker is reached through RabbitMQ's published management API (publish to an exchange,
  look at a queue without consuming it), and the DLQ tool runs inside the payment container
  (`docker compose exec payment python -m shop_common.messaging.dlq ...`), whose environment
  holds the AMQP URL of the private network.
"""

from __future__ import annotations

import asyncio
import json
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
VHOST = "/"


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
    return RunningSystem(control.gateway_url, None, run_dir, compose=control)


def choose_compose(flag: bool, project: str, launcher_running: bool) -> bool:
    """--compose, else a compose stack when no `make up` system runs and the project's does."""
    return flag or (not launcher_running and compose_running(project))
