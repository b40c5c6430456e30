"""The end-to-end suite (tests/integration) against the compose stack, as CI runs it.

Every check of tests/integration that does not need the local launcher itself
(`-m "not launcher"`: the 11 demo steps, the instance stop and the DLQ included, and the four
fault scenarios of test_faults.py, done the Docker way by shop_devstack.compose_control) runs in a
pytest of its own, pointed at this session's stack through SHOP_E2E_GATEWAY_URL,
SHOP_E2E_RUN_DIR and SHOP_E2E_COMPOSE_PROJECT (see tests/conftest.py). A child process keeps the
two systems apart: the parent's session fixture `system` would otherwise start the launcher.
Its tests run in random order (the parent's pytest-randomly seed, when active, so a failure
replays with the same order); its output is shown when it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from shop_devstack.compose_stack import Running
from shop_devstack.layout import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]
SUITE_TIMEOUT = 1200.0  # 2-5 min here (the faults most of it); the rest is for a loaded machine


def _order_args(config: pytest.Config) -> list[str]:
    """Random order with the parent's seed when pytest-randomly is active, else file order."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        return ["-p", "randomly", f"--randomly-seed={seed}"]
    return ["-p", "no:randomly"]


def test_the_end_to_end_suite_passes_against_compose(
    compose_system: Running,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    compose_figures: dict[str, Any],
) -> None:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "tests/integration",
        "-m",
        "not launcher",
        "-q",
        "-p",
        "no:cacheprovider",
        *_order_args(request.config),
    ]
    figures_file = tmp_path / "fault-figures.jsonl"
    env = {
        **os.environ,
        "SHOP_E2E_FIGURES_FILE": str(figures_file),
        "SHOP_E2E_GATEWAY_URL": compose_system.gateway_url,
        "SHOP_E2E_RUN_DIR": str(compose_system.run_dir),
        "SHOP_E2E_COMPOSE_PROJECT": compose_system.stack.project,
    }
    started = time.monotonic()
    result = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    tail = output.strip().splitlines()[-1:] or ["(no output)"]
    elapsed = time.monotonic() - started
    print(f"tests/integration -m 'not launcher' against compose: {tail[0]}")
    print(f"  {elapsed:.1f} s, {' '.join(argv[1:])}")
    compose_figures["tests/integration against compose"] = f"{tail[0]} ({elapsed:.0f} s)"
    if figures_file.exists():
        for line in figures_file.read_text().splitlines():
            counts = json.loads(line)
            compose_figures[f"fault: {counts.pop('scenario')}"] = counts
    assert result.returncode == 0, f"the end-to-end suite failed against compose:\n{output}"
    assert " passed" in tail[0] and "skipped" not in tail[0], output
