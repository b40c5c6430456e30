"""Launcher edges that must give one clear line: a taken port, missing infrastructure, stale state."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from shop_devstack.devkeys import ensure_dev_keys
from shop_devstack.launcher import ready_summary, stop_running
from shop_devstack.layout import Ports, StackConfig, build_processes
from shop_devstack.preflight import PreflightError, check_infrastructure, check_ports
from shop_devstack.running import free_port_offset
from shop_devstack.state import read_state, write_state


def test_a_taken_port_is_named_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        # The other processes' ports at a free offset: on a shared machine any default port
        # (50051/2 lie in the ephemeral range) may be taken, and the first taken one is named.
        base = Ports()
        offset = free_port_offset([p for p in base.all() if p != base.gateway])
        others = replace(base.offset(offset), gateway=port)
        config = replace(StackConfig(run_dir=tmp_path), ports=others)
        with pytest.raises(PreflightError) as info:
            check_ports(build_processes(config, ensure_dev_keys(tmp_path)))
    message = str(info.value)
    assert f"port {port} (gateway) is already in use" in message
    assert "\n" not in message


def test_infrastructure_that_does_not_answer_is_named_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # bound, not listening: connections are refused
        config = StackConfig(run_dir=tmp_path, redis_url=f"redis://127.0.0.1:{dead}/0")
        with pytest.raises(PreflightError) as info:
            check_infrastructure(config)
    assert str(info.value).startswith(f"redis does not answer at redis://127.0.0.1:{dead}/0")
    assert "\n" not in str(info.value)


def test_dev_keys_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    first = ensure_dev_keys(tmp_path)
    second = ensure_dev_keys(tmp_path)
    assert first == second
    assert (tmp_path / "jwt-dev-key.json").stat().st_mode & 0o777 == 0o600
    assert json.loads(first.public_keys_json) == {first.kid: first.public_pem}


def test_every_service_gets_the_contract_environment(tmp_path: Path) -> None:
    config = StackConfig(run_dir=tmp_path, database_prefix="e2e_")
    keys = ensure_dev_keys(tmp_path)
    processes = {p.name: p for p in build_processes(config, keys)}
    assert list(processes) == ["user-1", "user-2", "catalog", "payment", "order", "web", "gateway"]
    assert processes["user-2"].env["GRPC_PORT"] == "50052"
    assert processes["order"].env["USER_SERVICE_ADDRESSES"] == "127.0.0.1:50051,127.0.0.1:50052"
    assert processes["order"].env["CATALOG_SERVICE_ADDRESSES"] == "127.0.0.1:8003"  # prices
    assert processes["order"].env["DATABASE_URL"].endswith("/e2e_orders")
    assert processes["catalog"].env["DATABASE_URL"].endswith("/e2e_catalog")
    assert processes["catalog"].env["HTTP_PORT"] == "8003"
    assert processes["gateway"].env["CATALOG_SERVICE_ADDRESSES"] == "127.0.0.1:8003"
    assert processes["gateway"].env["WEB_SERVICE_ADDRESSES"] == "127.0.0.1:8004"
    assert processes["web"].env["GATEWAY_URL"] == "http://127.0.0.1:8000"
    assert processes["web"].env["USER_SERVICE_METRICS_ADDRESSES"] == "127.0.0.1:9101,127.0.0.1:9102"
    assert processes["gateway"].env["JWT_KID"] == keys.kid
    assert "DATABASE_URL" not in processes["gateway"].env
    assert all("JWT_PRIVATE_KEY" not in p.env for n, p in processes.items() if n != "gateway")


def test_every_process_names_where_its_metrics_are_scraped(tmp_path: Path) -> None:
    config = StackConfig(run_dir=tmp_path)
    processes = {p.name: p for p in build_processes(config, ensure_dev_keys(tmp_path))}
    ports = config.ports
    for name, port in (
        ("gateway", ports.gateway),
        ("order", ports.order),
        ("payment", ports.payment),
        ("catalog", ports.catalog),
        ("web", ports.web),
    ):
        assert processes[name].metrics_port == port  # HTTP services serve /metrics themselves
    for index, metrics_port in enumerate(ports.user_metrics, start=1):
        user = processes[f"user-{index}"]
        assert user.metrics_port == metrics_port != user.port
        assert user.env["METRICS_PORT"] == str(metrics_port)
    moved = ports.offset(100)
    assert moved.user_metrics == (ports.user_metrics[0] + 100, ports.user_metrics[1] + 100)
    assert len(set(ports.all())) == 10  # the processes and their Prometheus
    assert moved.prometheus == ports.prometheus + 100
    assert moved.catalog == ports.catalog + 100


def test_a_taken_metrics_port_is_named_too(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        base = Ports()
        offset = free_port_offset(base.all())
        moved = base.offset(offset)
        ports = replace(moved, user_metrics=(port, moved.user_metrics[1]))
        config = replace(StackConfig(run_dir=tmp_path), ports=ports)
        with pytest.raises(PreflightError) as info:
            check_ports(build_processes(config, ensure_dev_keys(tmp_path)))
    assert f"port {port} (user-1) is already in use" in str(info.value)


def test_a_stale_state_file_is_not_a_running_system(tmp_path: Path) -> None:
    state_file = tmp_path / "devstack.json"
    write_state(state_file, {"pid": 2**22 + 12345, "gateway_url": "http://x"})
    assert read_state(state_file) is None
    write_state(state_file, {"pid": os.getpid(), "gateway_url": "http://x"})
    assert read_state(state_file) is None  # alive, but not a launcher (pytest)
    assert stop_running(StackConfig(run_dir=tmp_path), report=lambda _: None) == 0
    assert not state_file.exists() or read_state(state_file) is None


def test_a_detached_start_reports_the_last_ready_block_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "devstack.log"
    log.write_text(
        "✓ system ready in 9.0 s\n  old block\n  logs: x\n"
        "• stopping\n✓ system ready in 4.2 s\n  user-1 grpc://127.0.0.1:50051  110 MB\n"
        "  total RSS of the 5 application processes: 612 MB\n  logs: run/logs/   stop: Ctrl-C\n"
        "• later line\n"
    )
    assert ready_summary(log) == [
        "✓ system ready in 4.2 s",
        "  user-1 grpc://127.0.0.1:50051  110 MB",
        "  total RSS of the 5 application processes: 612 MB",
        "  logs: run/logs/   stop: Ctrl-C",
    ]
    assert ready_summary(tmp_path / "missing.log") == []
