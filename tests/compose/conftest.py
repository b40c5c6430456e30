"""A compose stack of our own for tests/compose: built (Docker's cache reused), started under a
unique project name with ephemeral host ports, and always torn down with `down -v`.

No Docker engine → every test skips with the reason, or fails under REQUIRE_INFRA=1 or
DOCKER_REQUIRED=1. Where no registry answers, the stack runs on the local images of
deploy/offline (built once; later runs reuse them) without Consul.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from shop_common.testing.infra import infra_required
from shop_devstack import compose_stack
from shop_devstack.compose_stack import Running


def docker_required() -> bool:
    """True when a missing engine must fail the run instead of skipping."""
    flag = os.environ.get("DOCKER_REQUIRED", "")
    return infra_required() or flag not in ("", "0", "false", "no")


def _ports_override(path: Path, offline: bool) -> Path:
    """Publish on ephemeral loopback ports, so a `make compose-up` stack can run alongside."""
    lines = [
        "services:",
        "  gateway:",
        '    ports: !override ["127.0.0.1::8000"]',
        "  rabbitmq:",
        '    ports: !override ["127.0.0.1::15672"]',
    ]
    if not offline:
        lines += ["  consul:", '    ports: !override ["127.0.0.1::8500"]']
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
    stack = compose_stack.prepare(project, offline, extra_files=[override], build=False)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the finally below still runs.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with compose_stack.step("build (cached)"):
            if stack.offline:
                stack.build_offline_images()
            stack.build()
        with compose_stack.step(f"up --wait (project {project})"):
            try:
                stack.up()
            except compose_stack.StackError:
                compose_stack.say(stack.output("ps", "--all"))
                compose_stack.say(stack.output("logs", "--no-color", "--tail", "40"))
                raise
        run_dir = root / "run"
        kid = stack.import_keys(run_dir)
        yield Running(stack, f"http://{stack.published('gateway', 8000)}", run_dir, kid)
    finally:
        try:
            with compose_stack.step(f"down -v (project {project})"):
                stack.down()
        finally:
            signal.signal(signal.SIGTERM, previous)
        left = stack.leftovers()
        assert not left, f"left behind after down -v: {left}"
