"""Checks made before anything starts, each failing with one clear line (no traceback)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx
from shop_testing.infra import SPECS, port_answers, redact

from shop_devstack.layout import ProcessSpec, StackConfig


class PreflightError(Exception):
    """Something the system needs is missing or in the way; str() is the one line to print."""


def check_infrastructure(config: StackConfig) -> None:
    """PostgreSQL, Redis and RabbitMQ must answer where the config says."""
    for kind, url in (
        ("postgres", config.postgres_admin_url),
        ("redis", config.redis_url),
        ("rabbitmq", config.amqp_url),
    ):
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or SPECS[kind].port  # type: ignore[index]
        if not port_answers(host, port, timeout=1.0):
            raise PreflightError(
                f"{kind} does not answer at {redact(url)}: {SPECS[kind].hint}."  # type: ignore[index]
            )


def consul_answers(addr: str | None) -> bool:
    """True when a Consul agent answers at addr (CONSUL_HTTP_ADDR) with a leader."""
    if not addr:
        return False
    base = addr if "://" in addr else f"http://{addr}"
    try:
        response = httpx.get(f"{base}/v1/status/leader", timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text.strip() not in ("", '""')


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (we can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_ports(processes: Iterable[ProcessSpec]) -> None:
    """Every port the system listens on (its /metrics ports too) must be free."""
    for process in processes:
        for port in dict.fromkeys((process.port, process.metrics_port)):
            if port and not port_is_free(port):
                raise PreflightError(
                    f"port {port} ({process.name}) is already in use by another process: "
                    f"stop it (`ss -ltnp 'sport = :{port}'` shows which), "
                    "or `make down` if it is an earlier `make up`."
                )
