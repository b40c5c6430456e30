"""The whole system for the end-to-end suites (tests/integration, tests/security): started once
per session by the same launcher as `make up` (its own databases, RabbitMQ vhost, Redis db and
ports, with fault proxies in front of Redis and RabbitMQ), or an external one when
SHOP_E2E_GATEWAY_URL is set (the CI job that runs the suite against `docker compose up`; tests
marked `launcher` are deselected there). With SHOP_E2E_COMPOSE_PROJECT naming that compose
project too, the demo steps that stop an instance or reach the broker, and the fault scenarios
(instances crashed, Redis and RabbitMQ cut: shop_devstack.compose_control), run against it as well.
The launched system sends its traces to an OTLP receiver that the session runs (`trace_receiver`),
unless SHOP_E2E_TRACES=0.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis
from shop_devstack.accounts import operator_token
from shop_devstack.compose_control import ComposeControl
from shop_devstack.databases import drop_databases
from shop_devstack.layout import REPO_ROOT, Ports, StackConfig
from shop_devstack.running import LaunchError, RunningSystem, free_port_offset, launch
from shop_devstack.state import read_state
from shop_devstack.traces import OtlpReceiver
from shop_devstack.traces.background import BackgroundReceiver
from shop_testing.infra import infra_required
from shop_testing.isolation import VhostAdmin
from shop_testing.wait import eventually

APP_PACKAGES = (
    "user_service",
    "catalog_service",
    "order_service",
    "payment_service",
    "web_service",
    "gateway",
)
E2E_REDIS_DB = 13  # the e2e system's own Redis database (rate limits, caches), flushed per session


def _runnable(package: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.__main__") is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="session")
def trace_receiver() -> Iterator[OtlpReceiver | None]:
    """The OTLP receiver the launched system sends its traces to (in its own thread, so that every
    test's event loop can read it); None for an external system or with SHOP_E2E_TRACES=0."""
    if os.environ.get("SHOP_E2E_GATEWAY_URL") or os.environ.get("SHOP_E2E_TRACES", "1") == "0":
        yield None
        return
    with BackgroundReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def system(request: pytest.FixtureRequest) -> Iterator[RunningSystem]:
    """The running system under test."""
    external = os.environ.get("SHOP_E2E_GATEWAY_URL")
    if external:
        # The compose key, imported with `python -m shop_devstack import-keys`, lets the suite
        # create the admin account (see shop_devstack.accounts). No local infrastructure needed.
        run_dir = Path(os.environ.get("SHOP_E2E_RUN_DIR", "run")).resolve()
        # A compose stack (SHOP_E2E_COMPOSE_PROJECT) also stops and starts instances and reaches
        # its broker the Docker way (shop_devstack.compose_control): the demo's 11 steps run.
        project = os.environ.get("SHOP_E2E_COMPOSE_PROJECT")
        compose = ComposeControl.for_project(project) if project else None
        state = compose.state() if compose else {}
        yield RunningSystem(external.rstrip("/"), None, run_dir, state=state, compose=compose)
        return
    missing = [p for p in APP_PACKAGES if not _runnable(p)]
    if missing:
        reason = f"cannot start the system: {', '.join(missing)} has no __main__"
        if infra_required():
            pytest.fail(reason)
        pytest.skip(reason)
    postgres_url: str = request.getfixturevalue("postgres_url")
    redis_url: str = request.getfixturevalue("redis_url")
    vhosts: VhostAdmin = request.getfixturevalue("_vhost_admin")
    prefix = f"e2e_{uuid.uuid4().hex[:8]}_"
    vhost = prefix.rstrip("_")
    amqp = vhosts.create(vhost)
    redis_e2e = redis_url.rsplit("/", 1)[0] + f"/{E2E_REDIS_DB}"
    redis.Redis.from_url(redis_e2e).flushdb()
    base = Ports()
    offset = free_port_offset(base.all())
    # Logs outlive pytest's rotating tmp dirs (other runs prune them): run/e2e/<prefix>/logs.
    e2e_root = REPO_ROOT / "run" / "e2e"
    if e2e_root.exists():
        for old in e2e_root.iterdir():
            if read_state(old / "devstack.json") is None:  # its launcher is gone
                shutil.rmtree(old, ignore_errors=True)
    run_dir = e2e_root / prefix.rstrip("_")
    args = [
        "--fault-proxies",
        f"--port-offset={offset}",
        f"--database-prefix={prefix}",
        f"--postgres-url={postgres_url}",
        f"--redis-url={redis_e2e}",
        f"--amqp-url={amqp}",
    ]
    receiver: OtlpReceiver | None = request.getfixturevalue("trace_receiver")
    if receiver is not None:  # spans in batches of 200 ms, so a test waits little for its trace
        args += ["--set", f"OTEL_EXPORTER_OTLP_ENDPOINT={receiver.endpoint}"]
        args += ["--set", "OTEL_BSP_SCHEDULE_DELAY=200"]
    try:
        running = launch(run_dir, args)
    except LaunchError as exc:
        vhosts.delete(vhost)
        pytest.fail(f"the system did not start: {exc}")
    try:
        yield running
    finally:
        running.stop()
        config = StackConfig(postgres_admin_url=postgres_url, database_prefix=prefix)
        asyncio.run(drop_databases(config, ["users", "orders", "payments", "catalog"]))
        vhosts.delete(vhost)


@pytest.fixture(scope="session")
def system_logs(system: RunningSystem) -> Path | None:
    """Where the processes' logs are (for failure messages)."""
    return system.run_dir / "logs" if system.run_dir else None


@pytest_asyncio.fixture
async def controllable(system: RunningSystem) -> AsyncIterator[RunningSystem]:
    """The system, for a test that injects faults (the launcher's, or a compose project's);
    every dependency is restored and every instance running again afterwards."""
    if not system.can_inject_faults:
        pytest.fail(
            "fault-injection tests need the launcher or a compose project named by "
            "SHOP_E2E_COMPOSE_PROJECT (deselect them with -m 'not launcher')"
        )
    yield system
    await system.recover()
    await _recovered(system)


# Once every process runs again, the gateway's own clients must notice before the next test: its
# gRPC channel reconnects within shop_common's capped backoff (5 s), then its user-service breaker
# admits a trial call after BREAKER_RECOVERY_SECONDS (5 s). Three times their sum, with calls of
# up to the user call timeout in between, is the deadline.
RECOVERY_SECONDS = 3 * (5.0 + 5.0 + 5.0)


async def _recovered(system: RunningSystem) -> None:
    """The gateway answers for every backend again (the next test must not see this one's fault)."""
    assert system.run_dir is not None
    token = operator_token(system.run_dir)  # the launcher's key: an admin for 60 s
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as http:

        async def answering() -> bool:
            ready = await http.get("/ready")
            user = await http.get("/api/users/1", headers={"Authorization": f"Bearer {token}"})
            return ready.status_code == 200 and user.status_code in (200, 404)

        await eventually(
            answering,
            timeout=RECOVERY_SECONDS,
            interval=0.25,
            what="the gateway to reach every backend again after the fault",
        )
