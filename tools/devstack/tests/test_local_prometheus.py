"""The Prometheus `make up` starts: its generated scrape config, a real start with the
repository's rules and a stop by pid, and one line (not a failure) when it is not installed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from shop_devstack.devkeys import ensure_dev_keys
from shop_devstack.layout import ProcessSpec, StackConfig, build_processes
from shop_devstack.observability.local_prometheus import (
    RULES,
    LocalPrometheus,
    scrape_config,
    start_beside,
)
from shop_devstack.preflight import port_is_free
from shop_devstack.running import free_port_offset

PROCESSES = [
    ProcessSpec("user-1", "user_service", 50051, "grpc", "users", metrics_port=9101),
    ProcessSpec("user-2", "user_service", 50052, "grpc", "users", metrics_port=9102),
    ProcessSpec("catalog", "catalog_service", 8003, "http", "catalog", metrics_port=8003),
    ProcessSpec("payment", "payment_service", 8002, "http", "payments", metrics_port=8002),
    ProcessSpec("order", "order_service", 8001, "http", "orders", metrics_port=8001),
    ProcessSpec("gateway", "gateway", 8000, "http", "", metrics_port=8000),
    ProcessSpec("other", "other", 9999, "http", ""),  # serves no /metrics
]


def test_scrape_config_has_one_job_per_service_and_the_repository_rules() -> None:
    config = scrape_config(PROCESSES)
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {
        "user-service": ["127.0.0.1:9101", "127.0.0.1:9102"],
        "catalog-service": ["127.0.0.1:8003"],
        "payment-service": ["127.0.0.1:8002"],
        "order-service": ["127.0.0.1:8001"],
        "gateway": ["127.0.0.1:8000"],
    }
    assert config["rule_files"] == [str(RULES / "*.yml")]


def test_every_launched_service_is_scraped(tmp_path: Path) -> None:
    processes = build_processes(StackConfig(run_dir=tmp_path), ensure_dev_keys(tmp_path))
    jobs = {j["job_name"] for j in scrape_config(processes)["scrape_configs"]}
    assert jobs == {
        "user-service",
        "catalog-service",
        "payment-service",
        "order-service",
        "web-service",
        "gateway",
    }


async def test_prometheus_starts_with_the_alert_rules_and_stops(tmp_path: Path) -> None:
    port = 9090 + free_port_offset([9090])
    prometheus = LocalPrometheus(tmp_path, port)
    if prometheus.binary is None:
        pytest.fail("prometheus is not installed: apt-get install -y prometheus (.ci/run does)")
    await prometheus.start(PROCESSES)
    try:
        async with httpx.AsyncClient(base_url=prometheus.url) as http:
            groups = (await http.get("/api/v1/rules")).json()["data"]["groups"]
        assert "CircuitBreakerOpen" in {r["name"] for g in groups for r in g["rules"]}
        assert (tmp_path / "prometheus" / "prometheus.yml").exists()
    finally:
        await prometheus.stop()
    assert prometheus.process is None and port_is_free(port)


async def test_without_the_binary_it_says_so_in_one_line_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    lines: list[str] = []
    assert await start_beside(PROCESSES, tmp_path, 9090, lines.append) is None
    assert lines == ["• Prometheus is not installed (apt-get install prometheus): no metrics UI"]
