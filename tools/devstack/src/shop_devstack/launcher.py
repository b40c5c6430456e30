"""`make up`: the whole system as supervised local processes, and `make down`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from shop_devstack.accounts import ensure_accounts
from shop_devstack.client import ApiError
from shop_devstack.control import serve_control
from shop_devstack.databases import MigrationError, ensure_databases, migrate
from shop_devstack.devkeys import ensure_dev_keys
from shop_devstack.faults import TcpProxy
from shop_devstack.layout import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    REPO_ROOT,
    ProcessSpec,
    StackConfig,
    build_processes,
    traces_url,
)
from shop_devstack.observability.local_prometheus import LocalPrometheus, start_beside
from shop_devstack.preflight import (
    PreflightError,
    check_infrastructure,
    check_ports,
    consul_answers,
)
from shop_devstack.state import is_launcher, read_state, rss_bytes, write_state
from shop_devstack.supervisor import StartupError, Supervisor

Report = Callable[[str], None]


def say(line: str) -> None:
    """Print one launcher line immediately (the output is often piped to a log)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def installed(process: ProcessSpec) -> bool:
    """True when the process's package is importable in this environment."""
    try:
        return importlib.util.find_spec(f"{process.package}.__main__") is not None
    except ModuleNotFoundError:
        return False


def plan(
    config: StackConfig, *, partial: bool, report: Report
) -> tuple[StackConfig, list[ProcessSpec]]:
    """Decide discovery and the process list; PreflightError when something is in the way."""
    check_infrastructure(config)
    consul = config.consul_http_addr or os.environ.get("CONSUL_HTTP_ADDR")
    if consul and consul_answers(consul):
        config = config.with_consul(consul)
        report(f"• discovery: Consul at {consul}")
    else:
        config = config.with_consul(None)
        if consul:
            report(f"• discovery: static (CONSUL_HTTP_ADDR={consul} does not answer)")
        else:
            report("• discovery: static addresses (set CONSUL_HTTP_ADDR to use Consul)")
    processes = build_processes(config, ensure_dev_keys(config.run_dir))
    missing = [p for p in processes if not installed(p)]
    if missing and not partial:
        names = ", ".join(sorted({p.package for p in missing}))
        raise PreflightError(f"not installed: {names} (run `make install`, or `up --partial`)")
    for process in missing:
        report(f"• skipping {process.name}: {process.package} is not installed (--partial)")
    processes = [p for p in processes if installed(p)]
    check_ports(processes)
    return config, processes


async def prepare_databases(
    config: StackConfig, processes: Sequence[ProcessSpec], report: Report
) -> None:
    """Create missing databases, then migrate each service once (before any instance starts)."""
    bases = sorted({p.database for p in processes if p.database})
    created = await ensure_databases(config, bases)
    report(
        f"• databases: {', '.join(config.database_name(b) for b in bases)}"
        + (f" (created {', '.join(created)})" if created else "")
    )
    migrated: set[str] = set()
    for process in processes:
        if process.database and process.package not in migrated:
            await migrate(process, config.log_dir / f"{process.package}.migrate.log", process.env)
            migrated.add(process.package)
    report(f"• migrations applied: {', '.join(sorted(migrated))}")


async def start_fault_proxies(
    config: StackConfig, report: Report
) -> tuple[StackConfig, dict[str, TcpProxy]]:
    """Put a cut-able proxy in front of Redis and RabbitMQ; the services get the proxy URLs."""
    check_infrastructure(config)
    proxies: dict[str, TcpProxy] = {}
    for name, url in (("redis", config.redis_url), ("rabbitmq", config.amqp_url)):
        parts = urlsplit(url)
        proxy = TcpProxy(name, parts.hostname or "127.0.0.1", parts.port or 0)
        await proxy.start()
        proxies[name] = proxy
        report(f"• fault proxy for {name}: 127.0.0.1:{proxy.port} → {parts.hostname}:{parts.port}")
    config = replace(
        config,
        redis_url=proxies["redis"].url_for(config.redis_url),
        amqp_url=proxies["rabbitmq"].url_for(config.amqp_url),
    )
    return config, proxies


def summary(config: StackConfig, supervisor: Supervisor, elapsed: float) -> list[str]:
    """The URLs and the memory of the running system."""
    pids = [c.pid for c in supervisor.children.values() if c.pid]
    total_mb = sum(rss_bytes(pid) for pid in pids) / 2**20
    lines = [f"✓ system ready in {elapsed:.1f} s"]
    for name, child in supervisor.children.items():
        scheme = "grpc" if child.spec.probe == "grpc" else "http"
        lines.append(
            f"  {name:<9} {scheme}://{child.spec.address}  pid {child.pid}  {rss_bytes(child.pid or 0) / 2**20:.0f} MB"
        )
    if "gateway" in supervisor.children:
        lines.append(f"  front door {config.gateway_url}   (OpenAPI: {config.gateway_url}/docs)")
    if "web" in supervisor.children:
        lines.append(
            f"  storefront {config.gateway_url}/   console {config.gateway_url}/console"
            f"   (admin: {ADMIN_EMAIL} / {ADMIN_PASSWORD})"
        )
    lines += [
        f"  total RSS of the {len(pids)} application processes: {total_mb:.0f} MB",
        f"  logs: {config.log_dir}/   stop: Ctrl-C or `make down`",
    ]
    return lines


async def ensure_admin_account(config: StackConfig, report: Report) -> None:
    """The admin account (the console logs in with it) and the web service's sign-up account
    (role `registrar` only) exist."""
    try:
        await ensure_accounts(config.gateway_url, config.run_dir)
    except (ApiError, httpx.HTTPError) as exc:
        report(
            f"• the admin or sign-up account could not be created ({exc}): sign-up is unavailable"
        )


async def run_foreground(
    config: StackConfig, *, partial: bool = False, report: Report = say
) -> int:
    """Start, wait until ready, serve the control socket, stop everything on SIGINT/SIGTERM."""
    started = time.monotonic()
    running = read_state(config.state_file)
    if running:
        report(
            f"already running (launcher pid {running['pid']}): {running['gateway_url']}; `make down` stops it"
        )
        return 0
    proxies: dict[str, TcpProxy] = {}
    direct = {"amqp_url": config.amqp_url, "redis_url": config.redis_url}
    try:
        if config.fault_proxies:
            config, proxies = await start_fault_proxies(config, report)
        config, processes = plan(config, partial=partial, report=report)
        await prepare_databases(config, processes, report)
    except (PreflightError, MigrationError, OSError) as exc:
        report(f"✗ {exc}")
        return 2
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    supervisor = Supervisor(processes, config.log_dir, report, restart=False)
    state: dict[str, Any] = {
        "pid": os.getpid(),
        "gateway_url": config.gateway_url,
        "control_socket": str(config.control_socket),
        "ready": False,
        "processes": {},
        **direct,  # the real brokers (not the fault proxies): for operator tools such as the DLQ
        "postgres_admin_url": config.postgres_admin_url,
        "database_prefix": config.database_prefix,
        "traces_url": traces_url(config),  # where the services export traces (None: nowhere)
    }
    write_state(config.state_file, state)
    state["fault_proxies"] = {name: proxy.port for name, proxy in proxies.items()}
    server = await serve_control(supervisor, config.control_socket, proxies)
    prometheus: LocalPrometheus | None = None
    exit_code = 0
    try:
        await supervisor.start()
        ready = asyncio.create_task(supervisor.wait_ready(within=120))
        stopped = asyncio.create_task(stop_requested.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            report("• stop requested while starting")
        else:
            stopped.cancel()
            ready.result()
            supervisor.restart = True
            if "web" in supervisor.children and "gateway" in supervisor.children:
                await ensure_admin_account(config, report)
            lines = summary(config, supervisor, time.monotonic() - started)
            for line in lines[:-1]:
                report(line)
            if config.prometheus:
                prometheus = await start_beside(
                    processes, config.run_dir, config.ports.prometheus, report
                )
                state["prometheus_url"] = prometheus.url if prometheus else None
            report(lines[-1])
            while not stop_requested.is_set():
                state.update(ready=True, processes=supervisor.snapshot())
                write_state(config.state_file, state)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_requested.wait(), timeout=1.0)
    except StartupError as exc:
        report(f"✗ {exc}")
        exit_code = 1
    finally:
        report("• stopping: gateway, web, then order, payment and catalog, then the user service")
        server.close()
        if prometheus is not None:
            await prometheus.stop()
        await supervisor.stop_all()
        for proxy in proxies.values():
            await proxy.stop()
        config.state_file.unlink(missing_ok=True)
        config.control_socket.unlink(missing_ok=True)
        report("✓ stopped; no process left, every port free")
    return exit_code


def start_detached(
    config: StackConfig, argv: Sequence[str], report: Report = say, timeout: float = 180.0
) -> int:
    """Run the launcher in the background (its output in run/logs/devstack.log); wait until ready."""
    running = read_state(config.state_file)
    if running and running.get("ready"):
        report(f"already running: {running['gateway_url']}")
        return 0
    config.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.log_dir / "devstack.log"
    with log_path.open("ab") as log:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "shop_devstack", "--run-dir", str(config.run_dir), "up", *argv],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(config.state_file)
        if state and state.get("ready") and state["pid"] == child.pid:
            for line in ready_summary(log_path):
                report(line)
            report(
                f"✓ system running in the background (launcher pid {child.pid}); `make down` stops it"
            )
            return 0
        if child.poll() is not None:
            report(
                log_path.read_text(errors="replace").splitlines()[-1] if log_path.exists() else ""
            )
            return child.returncode or 1
        time.sleep(0.2)
    report(f"✗ not ready after {timeout:.0f} s; see {log_path}")
    return 1


def ready_summary(log_path: Path) -> list[str]:
    """The last "system ready" block a launcher wrote (URLs, memory) from its log."""
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    starts = [i for i, line in enumerate(lines) if line.startswith("✓ system ready")]
    if not starts:
        return []
    block = lines[starts[-1] :]
    end = next((i for i, line in enumerate(block) if line.lstrip().startswith("logs:")), None)
    return block if end is None else block[: end + 1]


def stop_running(config: StackConfig, report: Report = say, timeout: float = 60.0) -> int:
    """`make down`: SIGTERM the running launcher and wait until it has stopped everything."""
    state = read_state(config.state_file)
    if state is None:
        config.state_file.unlink(missing_ok=True)
        report("nothing running")
        return 0
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_launcher(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_launcher(pid):
        report(f"✗ launcher pid {pid} still running after {timeout:.0f} s")
        return 1
    report(f"✓ stopped (launcher pid {pid})")
    return 0


def config_for_run_dir(run_dir: Path | None) -> StackConfig:
    """The default config, or one whose state lives in another run directory."""
    config = StackConfig()
    return replace(config, run_dir=run_dir) if run_dir else config
