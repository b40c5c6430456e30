"""The end-to-end suite (tests/integration) against the compose stack, as CI runs it.

Every check of tests/integration that does not need the local launcher's process control
(`-m "not launcher"`: the 11 demo steps, the instance stop and the DLQ included) runs in a
pytest of its own, pointed at this session's stack through SHOP_E2E_GATEWAY_URL,
SHOP_E2E_RUN_DIR and SHOP_E2E_COMPOSE_PROJECT (see tests/conftest.py). A child process keeps the
two systems apart: the parent's session fixture `system` would otherwise start the launcher.
Its tests run in random order (the parent's pytest-randomly seed, when active, so a failure
replays with the same order); its output is shown when it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from shop_devstack.compose_stack import Running
from shop_devstack.layout import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]
SUITE_TIMEOUT = 600.0  # nine checks take 20-60 s here; the rest is headroom for a loaded machine


def _order_args(config: pytest.Config) -> list[str]:
    """Random order with the parent's seed when pytest-randomly is active, else file order."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        return ["-p", "randomly", f"--randomly-seed={seed}"]
    return ["-p", "no:randomly"]


def test_the_end_to_end_suite_passes_against_compose(
    compose_system: Running, request: pytest.FixtureRequest
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
    env = {
        **os.environ,
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
    print(f"tests/integration -m 'not launcher' against compose: {tail[0]}")
    print(f"  {time.monotonic() - started:.1f} s, {' '.join(argv[1:])}")
    assert result.returncode == 0, f"the end-to-end suite failed against compose:\n{output}"
    assert " passed" in tail[0] and "skipped" not in tail[0], output
