"""A compose stack of our own for tests/compose: built (Docker's cache reused), started under a
unique project name with ephemeral host ports, and always torn down with `down -v`.

No Docker engine → every test skips with the reason, or fails under REQUIRE_INFRA=1 or
DOCKER_REQUIRED=1. Where no registry answers, the stack runs on the local images of
deploy/offline (built once; later runs reuse them) without Consul.

The run's figures (build times, cold or warm; time until every service is healthy; image sizes;
the core stack's memory; the counts of the fault scenarios) are collected in FIGURES by the
fixture and the tests, and printed at the end of pytest's report ("compose figures").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from shop_devstack import compose_stack
from shop_devstack.compose_stack import MEMORY_BUDGET_MB, Running, core_memory, image_sizes
from shop_testing.infra import infra_required

FIGURES: dict[str, Any] = {}  # printed by pytest_terminal_summary below


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("compose figures")
    for key, value in FIGURES.items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        terminalreporter.write_line(f"{key}: {shown}")


@pytest.fixture(scope="session")
def compose_figures() -> dict[str, Any]:
    """Where a test records the figures it measured (printed at the end of the run)."""
    return FIGURES


def docker_required() -> bool:
    """True when a missing engine must fail the run instead of skipping."""
    flag = os.environ.get("DOCKER_REQUIRED", "")
    return infra_required() or flag not in ("", "0", "false", "no")


def _ports_override(path: Path, offline: bool) -> Path:
    """Publish on ephemeral loopback ports, so a `make compose-up` stack can run alongside.

    The test stack also publishes PostgreSQL and AMQP (loopback only): the fault scenarios read
    the services' databases and the dead-letter queues, as they do on the launcher's system.
    """
    lines = [
        "services:",
        "  gateway:",
        '    ports: !override ["127.0.0.1::8000"]',
        "  rabbitmq:",
        '    ports: !override ["127.0.0.1::15672", "127.0.0.1::5672"]',
        "  postgres:",
        '    ports: ["127.0.0.1::5432"]',
        "    networks: [backend, edge]",
        "  prometheus:",
        '    ports: !override ["127.0.0.1::9090"]',
    ]
    if not offline:
        lines += ["  consul:", '    ports: !override ["127.0.0.1::8500"]']
        lines += ["  jaeger:", '    ports: !override ["127.0.0.1::16686"]']
        lines += ["  grafana:", '    ports: !override ["127.0.0.1::3000"]']
    path.write_text("\n".join(lines) + "\n")
    return path


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def compose_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Build, start and (always) remove one stack for the session."""
    if not compose_stack.engine_answers():
        reason = f"no Docker engine answers: {compose_stack.engine_reason()}"
        if docker_required():
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("compose")
    project = f"shoptest{uuid.uuid4().hex[:8]}"
    offline = compose_stack.offline_mode(None)
    override = _ports_override(root / "ports.yml", offline)
    # With the observability profile: Prometheus (its rules, its targets) is tested here too.
    stack = compose_stack.prepare(
        project, offline, extra_files=[override], build=False, profiles=("observability",)
    )
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the finally below still runs.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if stack.offline:
            with _timed("offline base images (deploy/offline)", "shop-offline/"):
                stack.build_offline_images()
        with _timed("service images (docker compose build)", "shop/"):
            stack.build()
        FIGURES["image sizes"] = dict(image_sizes())
        with _timed(f"up --wait (project {project})"):
            try:
                stack.up()
            except compose_stack.StackError:
                compose_stack.say(stack.output("ps", "--all"))
                compose_stack.say(stack.output("logs", "--no-color", "--tail", "40"))
                raise
        _record_memory(stack, "core stack memory after up, MiB")
        run_dir = root / "run"
        kid = stack.import_keys(run_dir)
        yield Running(stack, f"http://{stack.published('gateway', 8000)}", run_dir, kid)
        _record_memory(stack, "core stack memory after the suites, MiB")
    finally:
        try:
            with compose_stack.step(f"down -v (project {project})"):
                stack.down()
        finally:
            signal.signal(signal.SIGTERM, previous)
        left = stack.leftovers()
        assert not left, f"left behind after down -v: {left}"


@contextlib.contextmanager
def _timed(name: str, images: str | None = None) -> Iterator[None]:
    """compose_stack.step, its duration kept in FIGURES, with whether the build cache was cold
    (none of the step's images existed before it)."""
    cold = images is not None and not image_sizes((images,))
    started = time.monotonic()
    with compose_stack.step(name):
        yield
    cache = "" if images is None else (" (cold)" if cold else " (warm cache)")
    FIGURES[name] = f"{time.monotonic() - started:.1f} s{cache}"


def _record_memory(stack: compose_stack.Stack, key: str) -> None:
    usage = stack.memory()
    core = core_memory(usage)
    FIGURES[key] = f"{core:.0f} (budget {MEMORY_BUDGET_MB})"
    # The budget is the issue's: checked here, where it is measured, after up and after the suites.
    assert core < MEMORY_BUDGET_MB, f"the core stack uses {core:.0f} MiB: {usage}"
