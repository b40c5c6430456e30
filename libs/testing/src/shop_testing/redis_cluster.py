"""A throwaway local Redis Cluster for tests: N primaries with replicas, on loopback ports.

Each node is a `redis-server --cluster-enabled yes` process in its own temporary directory;
`redis-cli --cluster create` assigns the slots. A short cluster-node-timeout makes a replica
take over a killed primary within a few seconds. Used by the `redis_cluster` fixture.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClusterNode", "LocalRedisCluster", "RedisClusterError"]


class RedisClusterError(RuntimeError):
    """The local cluster could not be started or did not reach the wanted state in time."""


class _PortLostError(RedisClusterError):
    """A node could not start on its port; start again on fresh ports."""


@dataclass
class ClusterNode:
    """One redis-server process of the local cluster."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (+10000) is free too."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(21000, 32000)
        if port not in chosen and _port_free(port) and _port_free(port + 10000):
            chosen.append(port)
    return chosen


class LocalRedisCluster:
    """Start, inspect, break (kill a node) and stop a local Redis Cluster."""

    def __init__(
        self,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        server: str = "redis-server",
        cli: str = "redis-cli",
    ) -> None:
        self.primaries = primaries
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.server = shutil.which(server) or server
        self.cli = shutil.which(cli) or cli
        self.nodes: list[ClusterNode] = []
        self._root: Path | None = None

    @property
    def url(self) -> str:
        """A redis:// URL of one live node (enough for RedisCluster.from_url to find the rest)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                return f"redis://127.0.0.1:{node.port}/0"
        raise RedisClusterError("no live node")

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 30.0, attempts: int = 3) -> str:
        """Start every node, create the cluster, wait for cluster_state:ok; return its URL.

        A port taken between the check and the start (another test run) means new ports.
        """
        if shutil.which(self.server) is None or shutil.which(self.cli) is None:
            raise RedisClusterError(
                "redis-server and redis-cli are needed for a local Redis Cluster"
            )
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except _PortLostError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> str:
        self._root = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        count = self.primaries * (1 + self.replicas)
        self.nodes = [ClusterNode(port, self._root / str(port)) for port in _free_ports(count)]
        try:
            for node in self.nodes:
                node.directory.mkdir()
                self._spawn(node)
            for node in self.nodes:
                self._wait_ping(node.port, timeout)
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            replicas = ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            created = subprocess.run(  # noqa: S603 - redis-cli with our own arguments
                [self.cli, "--cluster", "create", *addresses, *replicas],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            if created.returncode != 0:
                raise RedisClusterError(f"cluster create failed: {created.stdout[-500:]!r}")
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _spawn(self, node: ClusterNode) -> None:
        log = (node.directory / "redis.log").open("ab")
        options = {
            "port": str(node.port),
            "bind": "127.0.0.1",
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(self.node_timeout_ms),
            "cluster-replica-validity-factor": "0",  # any replica may take over at once
            "cluster-require-full-coverage": "no",  # other slots keep serving during a failover
            "save": "",
            "appendonly": "no",
            "dir": str(node.directory),
        }
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        node.process = subprocess.Popen(  # noqa: S603 - redis-server with our own arguments
            [self.server, *arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        """Kill every node and delete the temporary directories."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
                node.process.wait(timeout=10)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # ----- faults --------------------------------------------------------------------------
    def kill(self, port: int) -> None:
        """SIGKILL one node (what a crashed primary looks like)."""
        node = self._node(port)
        if node.process is not None:
            node.process.kill()
            node.process.wait(timeout=10)

    def restart(self, port: int, timeout: float = 30.0) -> None:
        """Start a killed node again with its nodes.conf; it rejoins (a former primary as replica)."""
        node = self._node(port)
        self._spawn(node)
        self._wait_ping(port, timeout)
        self.wait_healthy(timeout)

    # ----- inspection ----------------------------------------------------------------------
    def primary_ports(self) -> list[int]:
        """Ports of the nodes that are primaries now (as a live node sees it)."""
        return sorted(port for port, role in self._roles().items() if role == "master")

    def primary_for_slot(self, slot: int) -> int:
        """Port of the live primary that serves a hash slot."""
        for row in self._cli(self._live_port(), "cluster", "nodes").splitlines():
            fields = row.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for spec in fields[8:]:
                low, _, high = spec.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(fields[1].split(":")[1].split("@")[0])
        raise RedisClusterError(f"no live primary serves slot {slot}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and sees every slot served."""

        def healthy() -> bool:
            for node in self.nodes:
                if node.process is None or node.process.poll() is not None:
                    continue
                info = self._cli(node.port, "cluster", "info")
                if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                    return False
            return True

        self._wait(healthy, timeout, "cluster_state:ok")

    def _roles(self) -> dict[int, str]:
        roles: dict[int, str] = {}
        for row in self._cli(self._live_port(), "cluster", "nodes").splitlines():
            fields = row.split()
            port = int(fields[1].split(":")[1].split("@")[0])
            flags = fields[2]
            if "fail" not in flags:
                roles[port] = "master" if "master" in flags else "replica"
        return roles

    def _live_port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def _node(self, port: int) -> ClusterNode:
        for node in self.nodes:
            if node.port == port:
                return node
        raise RedisClusterError(f"no node on port {port}")

    def _cli(self, port: int, *args: str) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            done = subprocess.run(  # noqa: S603 - redis-cli with our own arguments
                [self.cli, "-p", str(port), *args], capture_output=True, timeout=5, check=False
            )
            return done.stdout.decode().strip()
        return ""

    def _wait_ping(self, port: int, timeout: float) -> None:
        node = self._node(port)

        def answers() -> bool:
            if node.process is not None and node.process.poll() is not None:
                raise _PortLostError(f"redis-server on port {port} exited (port taken?)")
            return self._cli(port, "ping") == "PONG"

        self._wait(answers, timeout, f"node {port} up")

    @staticmethod
    def _holds(condition: Callable[[], bool]) -> bool:
        try:
            return condition()
        except _PortLostError:
            raise
        except RedisClusterError:  # e.g. no live primary for a slot yet, mid-failover
            return False

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not self._holds(condition):
            if time.monotonic() > deadline:
                raise RedisClusterError(f"local Redis Cluster: {what} not reached in {timeout}s")
            time.sleep(0.05)
