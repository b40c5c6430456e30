"""The Prometheus that `make up` runs beside the processes when Debian's `prometheus` binary is
installed: a scrape config generated from the process list (each process's metrics port, one job
per service, as in deploy/observability/prometheus.yml for compose) and the same alert rules
(deploy/observability/rules). Without the binary, `make up` says so in one line and goes on."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from shop_devstack.layout import REPO_ROOT, ProcessSpec
from shop_devstack.preflight import port_is_free
from shop_devstack.supervisor import die_with_parent

RULES = REPO_ROOT / "deploy" / "observability" / "rules"
SCRAPE_INTERVAL = "5s"  # locally: targets show up within seconds of `make up`


class PrometheusUnavailable(Exception):
    """Prometheus cannot run here (not installed, port taken) or did not become ready."""


def metrics_job(package: str) -> str:
    """The Prometheus job of a service package: its service name (order_service -> order-service)."""
    return package.replace("_", "-")


def scrape_config(processes: Sequence[ProcessSpec], rules: Path = RULES) -> dict[str, Any]:
    """prometheus.yml for the local processes: one job per service, the repository's rules."""
    jobs: dict[str, list[str]] = {}
    for process in processes:
        if process.metrics_port:  # 0: serves no /metrics
            target = f"127.0.0.1:{process.metrics_port}"
            jobs.setdefault(metrics_job(process.package), []).append(target)
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }


async def start_beside(
    processes: Sequence[ProcessSpec], run_dir: Path, port: int, report: Callable[[str], None]
) -> LocalPrometheus | None:
    """Start Prometheus for `make up` and report its URL; when it cannot run, say why in one
    line and return None (the system runs without it)."""
    prometheus = LocalPrometheus(run_dir, port)
    try:
        await prometheus.start(processes)
    except PrometheusUnavailable as exc:
        report(f"• {exc}")
        return None
    report(f"  prometheus {prometheus.url}  (alerts: {prometheus.url}/alerts)")
    return prometheus


class LocalPrometheus:
    """One Prometheus process: its config, data and log under the run directory."""

    def __init__(self, run_dir: Path, port: int, binary: str | None = None) -> None:
        self.run_dir = run_dir
        self.port = port
        self.binary = binary or shutil.which("prometheus")
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Its UI and HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, processes: Sequence[ProcessSpec], within: float = 30.0) -> None:
        """Write the config, start Prometheus, return once /-/ready answers."""
        if self.binary is None:
            raise PrometheusUnavailable(
                "Prometheus is not installed (apt-get install prometheus): no metrics UI"
            )
        if not port_is_free(self.port):
            raise PrometheusUnavailable(f"port {self.port} is taken: Prometheus not started")
        home = self.run_dir / "prometheus"
        (home / "data").mkdir(parents=True, exist_ok=True)
        config = home / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(processes), sort_keys=False))
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / "prometheus.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                "--storage.tsdb.retention.time=1d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=die_with_parent,  # SIGTERM when the launcher dies (see supervisor)
            )
        deadline = time.monotonic() + within
        while not await asyncio.to_thread(self.ready):
            if self.process.returncode is not None or time.monotonic() > deadline:
                await self.stop()
                raise PrometheusUnavailable(
                    f"Prometheus did not become ready; see {log_dir / 'prometheus.log'}"
                )
            await asyncio.sleep(0.2)

    def ready(self) -> bool:
        """True when /-/ready answers 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:  # noqa: S310
                return int(reply.status) == 200
        except OSError:
            return False

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM our Prometheus (by its pid), SIGKILL after `grace` seconds."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
