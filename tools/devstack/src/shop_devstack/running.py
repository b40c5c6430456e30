"""A system that is running: started by us (launcher subprocess) or found (state file, or an
external gateway such as the docker compose stack). The demo and the end-to-end tests use it."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from shop_devstack.control import ControlError, send_command
from shop_devstack.layout import REPO_ROOT, StackConfig
from shop_devstack.preflight import port_is_free
from shop_devstack.state import read_state
from shop_devstack.supervisor import die_with_parent, tail

if TYPE_CHECKING:
    from shop_devstack.compose_control import ComposeControl


class LaunchError(Exception):
    """The launcher exited or did not become ready; str() has its last output lines."""


@dataclass
class RunningSystem:
    """Where the gateway is and how to inject faults (None when the system is not ours)."""

    gateway_url: str
    control_socket: Path | None
    run_dir: Path | None = None
    launcher: subprocess.Popen[bytes] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    compose: ComposeControl | None = None  # a compose stack: instances and broker the Docker way

    @property
    def controllable(self) -> bool:
        """True when we can stop, start and kill processes and cut dependencies."""
        return self.control_socket is not None

    @property
    def can_stop_instances(self) -> bool:
        """True when one service instance can be stopped and started (launcher or compose)."""
        return self.controllable or self.compose is not None

    async def stop_instance(self, name: str) -> str:
        """Stop one instance (user-1, ...); returns how, for the narration."""
        if self.compose is not None:
            await self.compose.stop(name)
            return f"docker compose stop {name}"
        await self.ctl("stop", name)
        return "the launcher keeps it down until told otherwise"

    async def start_instance(self, name: str) -> str:
        """Start an instance stopped by stop_instance; returns how, for the narration."""
        if self.compose is not None:
            await self.compose.start(name)
            return f"docker compose start {name}, healthy again"
        await self.ctl("start", name)
        return "started by the launcher"

    @property
    def can_inject_faults(self) -> bool:
        """True when instances can be crashed and dependencies cut (launcher or compose)."""
        return self.controllable or self.compose is not None

    async def kill_instance(self, name: str) -> str:
        """Crash one instance with SIGKILL; its supervisor starts it again. Returns how."""
        if self.compose is not None:
            await self.compose.kill(name)
            return (
                f"SIGKILL to {name}'s process from the Docker host; its restart policy restarts it"
            )
        await self.ctl("kill", name)
        return "SIGKILL; the launcher restarts it"

    async def restarts(self, name: str) -> int:
        """How many times the supervisor has started the instance again after it died."""
        if self.compose is not None:
            return await self.compose.restarts(name)
        return int((await self.ctl("status"))[name]["restarts"])

    async def cut(self, dependency: str) -> str:
        """Drop every connection to redis or rabbitmq and refuse new ones. Returns how."""
        if self.compose is not None:
            await self.compose.cut(dependency)
            return f"TCP resets for {dependency}'s port, in its network namespace"
        await self.ctl("cut", dependency)
        return f"the fault proxy in front of {dependency} drops and refuses connections"

    async def restore(self, dependency: str) -> None:
        """Undo cut (a no-op when the dependency was not cut)."""
        if self.compose is not None:
            await self.compose.restore(dependency)
        else:
            await self.ctl("restore", dependency)

    async def recover(self) -> None:
        """After a fault: every dependency restored, every stopped instance started again."""
        for dependency in ("redis", "rabbitmq"):
            await self.restore(dependency)
        if self.compose is not None:
            await self.compose.start_stopped()
            return
        for name, process in (await self.ctl("status")).items():
            if process["pid"] is None:
                await self.ctl("start", name)

    @property
    def amqp_url(self) -> str:
        """The broker's AMQP URL (the launcher's vhost, or where a compose stack publishes it)."""
        url = self.state.get("amqp_url")
        if not url:
            raise ControlError("this system does not publish its broker's AMQP port")
        return str(url)

    def database_url(self, base: str) -> str:
        """asyncpg URL of a service's database (users, orders, payments) in a system we run."""
        admin = self.state.get("postgres_admin_url")
        if not admin:
            raise ControlError("this system does not publish its databases: no database access")
        name = f"{self.state.get('database_prefix', '')}{base}"
        return urlunsplit(urlsplit(str(admin))._replace(path=f"/{name}"))

    async def ctl(self, cmd: str, name: str | None = None) -> dict[str, Any]:
        """Send a control command (stop/start/kill a process, cut/restore a dependency)."""
        if self.control_socket is None:
            raise ControlError("this system is not run by our launcher: no fault injection")
        reply = await send_command(self.control_socket, cmd, name)
        processes: dict[str, Any] = reply["processes"]
        return processes

    def stop(self, timeout: float = 60.0) -> None:
        """Stop a launcher we started (SIGTERM, then wait; SIGKILL as a last resort)."""
        if self.launcher is None or self.launcher.poll() is not None:
            return
        self.launcher.send_signal(signal.SIGTERM)
        try:
            self.launcher.wait(timeout)
        except subprocess.TimeoutExpired:
            self.launcher.kill()
            self.launcher.wait()


def find_running(config: StackConfig) -> RunningSystem | None:
    """The system `make up` started, if its launcher is alive and ready."""
    state = read_state(config.state_file)
    if not state or not state.get("ready"):
        return None
    return RunningSystem(
        str(state["gateway_url"]), Path(state["control_socket"]), config.run_dir, state=state
    )


def free_port_offset(base_ports: list[int], start: int = 10000, step: int = 7) -> int:
    """An offset that makes every base port free (for a test system beside `make up`).

    The scan starts at a random place in the range, so that test sessions launching at the same
    moment (two checkouts, parallel CI jobs) do not all pick the first free block and collide.
    """
    offsets = list(range(start, start + 2000, step))
    first = random.randrange(len(offsets))
    for offset in offsets[first:] + offsets[:first]:
        if max(base_ports) + offset > 65535:
            break
        if all(port_is_free(port + offset) for port in base_ports):
            return offset
    raise LaunchError("no free block of ports found for the test system")


def launch(
    run_dir: Path, args: list[str], timeout: float = 180.0, program: list[str] | None = None
) -> RunningSystem:
    """Start `python -m shop_devstack up <args>` as our child and wait until it is ready."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "launcher.log"
    state_file = run_dir / "devstack.json"
    with log_path.open("ab") as log:
        launcher = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                *(program or [sys.executable, "-m", "shop_devstack"]),
                "--run-dir",
                str(run_dir),
                "up",
                *args,
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(state_file)
        if state and state.get("ready") and state["pid"] == launcher.pid:
            return RunningSystem(
                str(state["gateway_url"]), Path(state["control_socket"]), run_dir, launcher, state
            )
        if launcher.poll() is not None:
            raise LaunchError(f"launcher exited with {launcher.returncode}:\n{tail(log_path, 20)}")
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        launcher.terminate()
    launcher.wait(30)
    raise LaunchError(f"system not ready after {timeout:.0f} s:\n{tail(log_path, 20)}")
