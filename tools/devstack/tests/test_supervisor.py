"""The supervisor with real child processes: readiness, crash restart, stop, no orphans."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from shop_devstack.layout import ProcessSpec
from shop_devstack.preflight import port_is_free
from shop_devstack.state import pid_alive
from shop_devstack.supervisor import ChildState, StartupError, Supervisor, child_environment
from shop_testing.wait import eventually

FAKE = str(Path(__file__).with_name("fake_service.py"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake(name: str, port: int, **env: str) -> ProcessSpec:
    return ProcessSpec(
        name, "fake", port, "http", "", {"HTTP_PORT": str(port), **env}, (sys.executable, FAKE)
    )


async def test_starts_waits_until_ready_and_stops_with_the_port_freed(tmp_path: Path) -> None:
    gate = tmp_path / "ready"
    port = free_port()
    events: list[str] = []
    sup = Supervisor([fake("svc", port, READY_AFTER_FILE=str(gate))], tmp_path, events.append)
    await sup.start()
    waiting = asyncio.create_task(sup.wait_ready(within=20))

    async def answers_not_ready() -> bool:
        async with httpx.AsyncClient() as http:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 503
            except httpx.TransportError:  # not listening yet
                return False

    # The same budget wait_ready has: once the child is up, /ready says 503 until the gate opens.
    await eventually(answers_not_ready, timeout=20, interval=0.05, what="svc up, not ready")
    assert not waiting.done()
    gate.touch()
    await waiting
    assert sup.children["svc"].state is ChildState.READY
    pid = sup.children["svc"].pid
    assert pid is not None
    await sup.stop_all()
    assert not pid_alive(pid)
    assert port_is_free(port)


async def test_a_killed_process_is_reported_and_restarted(tmp_path: Path) -> None:
    port = free_port()
    events: list[str] = []
    sup = Supervisor([fake("svc", port)], tmp_path, events.append)
    await sup.start()
    await sup.wait_ready(within=20)
    sup.restart = True
    first = sup.children["svc"].pid
    sup.kill("svc", signal.SIGKILL)
    await eventually(lambda: any("ready again" in e for e in events))
    assert any("svc killed by SIGKILL; restarting" in e for e in events)
    assert sup.children["svc"].pid not in (None, first)
    assert sup.children["svc"].restarts == 1
    await sup.stop_all()


async def test_a_stopped_process_stays_down_until_started(tmp_path: Path) -> None:
    port = free_port()
    sup = Supervisor([fake("svc", port)], tmp_path, lambda _: None, restart=True)
    await sup.start()
    await sup.wait_ready(within=20)
    await sup.stop("svc")
    watcher = sup.children["svc"].watcher
    assert watcher is not None
    await watcher  # it has seen the exit and decided: a restart would spawn before it returns
    assert sup.children["svc"].state is ChildState.STOPPED
    assert sup.children["svc"].pid is None
    assert port_is_free(port)
    await sup.start(["svc"])
    await sup.wait_ready(["svc"], within=20)
    await sup.stop_all()


async def test_a_process_that_exits_while_starting_fails_with_its_log(tmp_path: Path) -> None:
    port = free_port()
    broken = ProcessSpec(
        "broken",
        "x",
        port,
        "http",
        "",
        {},
        (sys.executable, "-c", "raise SystemExit('bad config: FOO')"),
    )
    sup = Supervisor([broken], tmp_path, lambda _: None, restart=False)
    await sup.start()
    with pytest.raises(StartupError, match="broken exited with code 1 before it was ready") as info:
        await sup.wait_ready(within=20)
    assert "bad config: FOO" in str(info.value)
    await sup.stop_all()


async def test_children_die_with_the_launcher(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a SIGKILLed launcher leaves no orphan."""
    port = free_port()
    script = tmp_path / "launcher.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from shop_devstack.layout import ProcessSpec\n"
        "from shop_devstack.supervisor import Supervisor\n"
        f"spec = ProcessSpec('svc', 'fake', {port}, 'http', '', {{'HTTP_PORT': '{port}'}}, (sys.executable, {FAKE!r}))\n"
        "async def main():\n"
        f"    sup = Supervisor([spec], Path({str(tmp_path)!r}), print)\n"
        "    await sup.start(); await sup.wait_ready(within=20)\n"
        "    print('PID', sup.children['svc'].pid, flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    launcher = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE
    )
    assert launcher.stdout is not None
    line = await asyncio.wait_for(launcher.stdout.readline(), 30)
    child_pid = int(line.split()[1])
    launcher.kill()
    await launcher.wait()
    await eventually(lambda: not pid_alive(child_pid) and port_is_free(port))


def test_the_shell_consul_address_is_not_inherited_only_the_launchers_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "http://127.0.0.1:1")  # set, but does not answer
    monkeypatch.setenv("SOME_OTHER", "kept")
    static = child_environment({"HTTP_PORT": "1"})
    assert "CONSUL_HTTP_ADDR" not in static and static["SOME_OTHER"] == "kept"
    consul = child_environment({"CONSUL_HTTP_ADDR": "http://127.0.0.1:8500"})
    assert consul["CONSUL_HTTP_ADDR"] == "http://127.0.0.1:8500"


def test_children_inherit_the_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """`OTEL_EXPORTER_OTLP_ENDPOINT=... make up` exports every process's traces there."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert child_environment({})["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
