"""Supervise the application processes: start, watch, restart on crash, stop cleanly.

Each child runs in its own session (so Ctrl-C reaches only the launcher, which then stops
the children in order) and asks the kernel to SIGTERM it if the launcher dies
(PR_SET_PDEATHSIG), so even a killed launcher leaves no orphan behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx

from shop_devstack.layout import REPO_ROOT, ProcessSpec
from shop_devstack.preflight import port_is_free
from shop_devstack.probes import is_ready

PR_SET_PDEATHSIG = 1
RESTART_LIMIT = 5  # crashes within RESTART_WINDOW before giving up on a process
RESTART_WINDOW = 60.0
NOT_INHERITED = frozenset({"CONSUL_HTTP_ADDR"})


class ChildState(StrEnum):
    """Where a supervised process is in its life."""

    STARTING = "starting"
    READY = "ready"
    CRASHED = "crashed"
    STOPPED = "stopped"
    FAILED = "failed"


class StartupError(Exception):
    """A process exited or never became ready while starting; str() says which and why."""


def _libc_prctl() -> Callable[..., int] | None:
    """prctl(2) from the C library, resolved once, in the parent, when this module loads."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(libc_name, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no PR_SET_PDEATHSIG
        return None
    return prctl


_PRCTL = _libc_prctl()
_SIGTERM = int(signal.SIGTERM)


def die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM me when the launcher goes away.

    Only one foreign call happens here: Python documents code in `preexec_fn` as unsafe when the
    parent has threads (the launcher has asyncio's resolver threads), and `find_library`, which
    this used to call here, starts `ldconfig` in a subprocess from the half-made child.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, _SIGTERM)


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The launcher's environment plus the process's own, minus the discovery switch (the
    launcher decides static or Consul, CONSUL_HTTP_ADDR only when it answered, not the shell),
    plus Python's fault handler, so that a crash leaves its stack in the process's log."""
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    # A process that dies of a signal writes its Python stack to its log first.
    return {"PYTHONFAULTHANDLER": "1", **inherited, **env}


def describe_exit(code: int) -> str:
    """'exited with code 1' / 'killed by SIGKILL'."""
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def tail(path: Path, lines: int = 8) -> str:
    """The last lines of a log file, for a startup failure message."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


@dataclass
class Child:
    """One supervised process and what we know about it."""

    spec: ProcessSpec
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    state: ChildState = ChildState.STOPPED
    restarts: int = 0
    last_exit: str | None = None
    want_running: bool = False
    crash_times: deque[float] = field(default_factory=lambda: deque(maxlen=RESTART_LIMIT))
    watcher: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The live process id, if running."""
        if self.process is not None and self.process.returncode is None:
            return self.process.pid
        return None


class Supervisor:
    """Starts the processes, restarts crashed ones, reports every change through `report`."""

    def __init__(
        self,
        processes: Sequence[ProcessSpec],
        log_dir: Path,
        report: Callable[[str], None],
        *,
        restart: bool = True,
    ) -> None:
        self.children = {p.name: Child(p, log_dir / f"{p.name}.log") for p in processes}
        self.report = report
        self.restart = restart
        self.shutting_down = False
        self._http = httpx.AsyncClient()

    async def _spawn(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with child.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            child.process = await asyncio.create_subprocess_exec(
                *child.spec.command,
                cwd=REPO_ROOT,
                env=child_environment(child.spec.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        child.state = ChildState.STARTING
        child.want_running = True
        child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.spec.name}")

    def _should_run(self, child: Child) -> bool:
        """False once a stop was asked for (by the operator or by shutdown)."""
        return child.want_running and not self.shutting_down

    async def _watch(self, child: Child) -> None:
        """Wait for the process to exit; restart it unless the exit was asked for."""
        process = child.process
        assert process is not None
        code = await process.wait()
        child.last_exit = describe_exit(code)
        if not self._should_run(child):
            child.state = ChildState.STOPPED
            return
        child.state = ChildState.CRASHED
        now = time.monotonic()
        child.crash_times.append(now)
        if not self.restart or (
            len(child.crash_times) == RESTART_LIMIT and now - child.crash_times[0] < RESTART_WINDOW
        ):
            child.state = ChildState.FAILED
            self.report(
                f"✗ {child.spec.name} {child.last_exit}; not restarting (see {child.log_path})"
            )
            return
        delay = min(0.25 * 2 ** len(child.crash_times), 4.0)
        self.report(f"✗ {child.spec.name} {child.last_exit}; restarting in {delay:.1f} s")
        await asyncio.sleep(delay)
        if not self._should_run(child):
            return
        child.restarts += 1
        await self._spawn(child)
        with contextlib.suppress(StartupError):
            await self.wait_ready([child.spec.name], within=60)
            self.report(f"✓ {child.spec.name} ready again (restart {child.restarts})")

    async def start(self, names: Sequence[str] | None = None) -> None:
        """Spawn the named processes (all by default) without waiting for readiness."""
        for name in names or list(self.children):
            child = self.children[name]
            if child.pid is None:
                await self._spawn(child)

    async def wait_ready(self, names: Sequence[str] | None = None, within: float = 90.0) -> None:
        """Poll each process's readiness until all are ready; StartupError on exit or timeout."""
        pending = list(names or self.children)
        deadline = time.monotonic() + within
        while pending:
            for name in list(pending):
                child = self.children[name]
                if child.pid is None and child.state is not ChildState.STARTING:
                    raise StartupError(
                        f"{name} {child.last_exit or 'is not running'} before it was ready; "
                        f"last lines of {child.log_path}:\n{tail(child.log_path)}"
                    )
                if child.pid is not None and await is_ready(child.spec, self._http):
                    child.state = ChildState.READY
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise StartupError(
                    f"{', '.join(pending)} not ready after {within:.0f} s; "
                    f"see {self.children[pending[0]].log_path}"
                )
            if pending:
                await asyncio.sleep(0.2)

    async def stop(self, name: str, grace: float = 10.0) -> None:
        """SIGTERM one process, SIGKILL it after grace; it stays down until start()."""
        child = self.children[name]
        child.want_running = False
        process = child.process
        if process is None or process.returncode is not None:
            child.state = ChildState.STOPPED
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            self.report(f"! {name} ignored SIGTERM for {grace:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        child.state = ChildState.STOPPED
        await self._wait_port_free(child.spec)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send a signal as a crash would: the supervisor sees the exit and restarts it."""
        pid = self.children[name].pid
        if pid is not None:
            os.kill(pid, sig)

    async def stop_all(self, grace: float = 10.0) -> None:
        """Stop in reverse start order: the gateway first, the user service last."""
        self.shutting_down = True
        names = list(self.children)[::-1]
        front, rest = names[:1], names[1:]
        for group in (front, rest):
            await asyncio.gather(*(self.stop(name, grace) for name in group))
        for child in self.children.values():
            if child.watcher is not None:
                child.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.watcher
        await self._http.aclose()

    @staticmethod
    async def _wait_port_free(spec: ProcessSpec) -> None:
        """A stopped server's socket may linger a moment; report stop only once the port is free."""
        for _ in range(100):
            if port_is_free(spec.port):
                return
            await asyncio.sleep(0.05)

    def snapshot(self) -> Mapping[str, dict[str, object]]:
        """JSON-ready state of every process (for the state file, `status` and the control socket)."""
        return {
            name: {
                "pid": child.pid,
                "port": child.spec.port,
                "metrics_port": child.spec.metrics_port,
                "state": child.state.value,
                "restarts": child.restarts,
                "last_exit": child.last_exit,
                "log": str(child.log_path),
            }
            for name, child in self.children.items()
        }
