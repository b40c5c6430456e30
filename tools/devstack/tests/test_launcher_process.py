"""The launcher as a process: ready, control socket, crash restart, twice is safe, Ctrl-C, down."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from shop_devstack.databases import drop_databases
from shop_devstack.launcher import stop_running
from shop_devstack.layout import Ports, StackConfig
from shop_devstack.preflight import port_is_free
from shop_devstack.running import RunningSystem, free_port_offset, launch
from shop_devstack.state import pid_alive
from shop_testing.wait import eventually

pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]
SCRIPT = str(Path(__file__).with_name("shop_devstack_fake_launcher.py"))


@pytest.fixture
def started(
    tmp_path: Path, postgres_url: str, redis_url: str, amqp_url: str
) -> Iterator[RunningSystem]:
    base = Ports()
    offset = free_port_offset(base.all(), start=12000)
    prefix = f"t_launcher_{uuid.uuid4().hex[:8]}_"
    args = [
        f"--database-prefix={prefix}",
        f"--port-offset={offset}",
        f"--postgres-url={postgres_url}",
        f"--redis-url={redis_url}",
        f"--amqp-url={amqp_url}",
    ]
    system = launch(tmp_path, args, timeout=60, program=[sys.executable, SCRIPT])
    system.state["args"] = args
    system.state["prefix"] = prefix
    yield system
    system.stop()
    config = StackConfig(postgres_admin_url=postgres_url, database_prefix=prefix)
    asyncio.run(drop_databases(config, ["users"]))


async def test_databases_are_created_and_migrated_before_start(
    started: RunningSystem, postgres_url: str
) -> None:
    database = f"{started.state['prefix']}users"
    conn = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + f"/{database}")
    try:
        tables = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'migrated'"
        assert await conn.fetchval(tables) == 1
    finally:
        await conn.close()
    assert started.run_dir is not None
    assert (started.run_dir / "logs" / "fake.migrate.log").exists()


def child_pids(system: RunningSystem) -> dict[str, int]:
    return {name: p["pid"] for name, p in system.state["processes"].items()}


async def test_ready_state_control_and_crash_restart(started: RunningSystem) -> None:
    processes = await started.ctl("status")
    assert {p["state"] for p in processes.values()} == {"ready"}
    killed = processes["svc-1"]["pid"]
    await started.ctl("kill", "svc-1")

    async def restarted() -> bool:
        nonlocal processes
        processes = await started.ctl("status")
        pid = processes["svc-1"]["pid"]  # None between the exit and the watcher's noticing it
        return processes["svc-1"]["state"] == "ready" and pid not in (None, killed)

    # The supervisor itself gives a restarted process 60 s to be ready (Supervisor._watch).
    await eventually(restarted, timeout=60, interval=0.05, what="svc-1 restarted and ready")
    assert processes["svc-1"]["restarts"] == 1
    assert processes["svc-1"]["last_exit"] == "killed by SIGKILL"
    await started.ctl("stop", "svc-2")
    assert port_is_free(processes["svc-2"]["port"])
    await asyncio.sleep(1)
    assert (await started.ctl("status"))["svc-2"]["pid"] is None  # stopped stays stopped
    await started.ctl("start", "svc-2")
    assert (await started.ctl("status"))["svc-2"]["state"] == "ready"
    started.stop()


def test_running_it_twice_is_safe(started: RunningSystem) -> None:
    assert started.run_dir is not None
    second = subprocess.run(
        [sys.executable, SCRIPT, "--run-dir", str(started.run_dir), "up", *started.state["args"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 0
    assert second.stdout.strip().startswith("already running")
    started.stop()


def test_ctrl_c_stops_everything_leaving_no_process_and_no_port(started: RunningSystem) -> None:
    pids = child_pids(started)
    ports = [p["port"] for p in started.state["processes"].values()]
    assert started.launcher is not None
    started.launcher.send_signal(signal.SIGINT)
    assert started.launcher.wait(30) == 0
    assert not any(pid_alive(pid) for pid in pids.values())
    assert all(port_is_free(port) for port in ports)
    assert started.run_dir is not None
    assert not (started.run_dir / "devstack.json").exists()
    assert not (started.run_dir / "devstack.sock").exists()


def test_make_down_stops_a_running_launcher(started: RunningSystem) -> None:
    assert started.run_dir is not None
    pids = child_pids(started)
    lines: list[str] = []
    assert stop_running(StackConfig(run_dir=started.run_dir), lines.append) == 0
    assert lines[-1].startswith("✓ stopped")
    assert not any(pid_alive(pid) for pid in pids.values())
    assert stop_running(StackConfig(run_dir=started.run_dir), lines.append) == 0
    assert lines[-1] == "nothing running"
