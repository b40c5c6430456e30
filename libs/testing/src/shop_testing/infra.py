"""Find PostgreSQL, Redis and RabbitMQ for tests and local runs, in one fixed order.

1. an explicit URL in the environment (POSTGRES_URL, REDIS_URL, AMQP_URL);
2. the service on its standard localhost port, if it answers;
3. a testcontainers container, when a Docker engine answers;
4. otherwise: missing, with one line naming what is missing and how to provide it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

Kind = Literal["postgres", "redis", "rabbitmq"]
Source = Literal["env", "local", "testcontainers"]


@dataclass(frozen=True)
class ServiceSpec:
    """How to find one kind of infrastructure."""

    kind: Kind
    env_var: str
    local_url: str
    port: int
    image: str
    hint: str


SPECS: dict[Kind, ServiceSpec] = {
    "postgres": ServiceSpec(
        "postgres",
        "POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:5432/postgres",
        5432,
        "postgres:16-alpine",
        "start PostgreSQL on 127.0.0.1:5432 (trust auth for user postgres), "
        "or set POSTGRES_URL=postgresql://user:pass@host:5432/postgres, or run a Docker engine",
    ),
    "redis": ServiceSpec(
        "redis",
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        6379,
        "redis:7-alpine",
        "start Redis on 127.0.0.1:6379, or set REDIS_URL=redis://host:6379/0, "
        "or run a Docker engine",
    ),
    "rabbitmq": ServiceSpec(
        "rabbitmq",
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/",
        5672,
        "rabbitmq:3.13-management-alpine",
        "start RabbitMQ on 127.0.0.1:5672 (guest/guest), or set AMQP_URL=amqp://user:pass@host:5672/, "
        "or run a Docker engine",
    ),
}


@dataclass(frozen=True)
class Endpoint:
    """A piece of infrastructure that answered, and where it came from."""

    kind: Kind
    url: str
    source: Source


class InfrastructureMissingError(RuntimeError):
    """Raised when a kind of infrastructure cannot be found by any of the four means."""


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds within timeout."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def url_answers(url: str) -> bool:
    """True when the host and port of a URL accept a TCP connection."""
    parts = urlsplit(url)
    return port_answers(parts.hostname or "127.0.0.1", parts.port or 0)


def docker_engine_answers() -> bool:
    """True when a Docker engine (not only the CLI) answers on its socket."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host.removeprefix("unix://")
        if not os.path.exists(path):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(path)
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in sock.recv(1024)
            except OSError:
                return False
    return url_answers(host.replace("tcp://", "http://"))


def missing_line(kind: Kind) -> str:
    """The one line that names what is missing and how to provide it."""
    spec = SPECS[kind]
    return (
        f"{kind} is not available: no {spec.env_var} set, nothing answers on 127.0.0.1:{spec.port}, "
        f"and no Docker engine for testcontainers. To provide it: {spec.hint}."
    )


class Containers:
    """Testcontainers started on demand, stopped at the end of the session."""

    def __init__(self) -> None:
        self._started: list[Any] = []

    def start(self, kind: Kind) -> str:
        """Start a container of this kind and return its URL."""
        factories: dict[Kind, Callable[[], tuple[Any, Callable[[Any], str]]]] = {
            "postgres": self._postgres,
            "redis": self._redis,
            "rabbitmq": self._rabbitmq,
        }
        container, url_of = factories[kind]()
        container.start()
        self._started.append(container)
        return url_of(container)

    @staticmethod
    def _postgres() -> tuple[Any, Callable[[Any], str]]:
        from testcontainers.postgres import PostgresContainer

        c = PostgresContainer(SPECS["postgres"].image, driver=None)
        return c, lambda c: str(c.get_connection_url())

    @staticmethod
    def _redis() -> tuple[Any, Callable[[Any], str]]:
        from testcontainers.redis import RedisContainer

        c = RedisContainer(SPECS["redis"].image)
        return c, lambda c: f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"

    @staticmethod
    def _rabbitmq() -> tuple[Any, Callable[[Any], str]]:
        from testcontainers.rabbitmq import RabbitMqContainer

        c = RabbitMqContainer(SPECS["rabbitmq"].image)
        return (
            c,
            lambda c: f"amqp://guest:guest@{c.get_container_host_ip()}:{c.get_exposed_port(5672)}/",
        )

    def stop_all(self) -> None:
        """Stop every container this object started."""
        while self._started:
            with contextlib.suppress(Exception):
                self._started.pop().stop()


def resolve(kind: Kind, containers: Containers | None = None) -> Endpoint:
    """Find one kind of infrastructure; raise InfrastructureMissingError with the one line."""
    spec = SPECS[kind]
    explicit = os.environ.get(spec.env_var)
    if explicit:
        if not url_answers(explicit):
            raise InfrastructureMissingError(
                f"{kind}: {spec.env_var}={redact(explicit)} is set but does not answer."
            )
        return Endpoint(kind, explicit, "env")
    if port_answers("127.0.0.1", spec.port):
        return Endpoint(kind, spec.local_url, "local")
    if containers is not None and docker_engine_answers():
        return Endpoint(kind, containers.start(kind), "testcontainers")
    raise InfrastructureMissingError(missing_line(kind))


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def infra_required() -> bool:
    """True when a missing service must fail the run (REQUIRE_INFRA=1, as in CI)."""
    return os.environ.get("REQUIRE_INFRA", "") not in ("", "0", "false", "no")
