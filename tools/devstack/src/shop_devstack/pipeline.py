"""The order pipeline on its own: user, catalog, order and payment as supervised subprocesses.

Each process runs its real entry point (`python -m <package>`) on a free loopback port, with its
own database (created here, dropped by `close`) and the RabbitMQ vhost it is given, so a test or a
benchmark can stop, start or SIGKILL one of them mid-run and cut the order service off the broker
(a TcpProxy in front of it). tests/pipeline and bench/bench_orders.py drive it.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import grpc
from shop_common.auth import SigningKey, TokenIssuer, generate_signing_key
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

from shop_devstack.databases import drop_databases, ensure_databases
from shop_devstack.faults import TcpProxy
from shop_devstack.layout import DevKeys, Ports, ProcessSpec, StackConfig, build_processes
from shop_devstack.supervisor import Supervisor

USER = "user-1"
CATALOG = "catalog"
ORDER = "order"
PAYMENT = "payment"
DATABASE_OF = {USER: "users", CATALOG: "catalog", ORDER: "orders", PAYMENT: "payments"}
# The seed catalog's regular stock (100 per sku) is raised to this by `stock_up`, so a run's
# orders never run out unless a test means them to (the low and out-of-stock skus stay).
PLENTY = 1_000_000
ISSUER = "shop-gateway"
AUDIENCE = "shop"


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dev_keys(kid: str | None = None) -> DevKeys:
    """A fresh RSA key pair the processes trust and the caller signs tokens with."""
    key = generate_signing_key(kid or f"pipeline-{uuid.uuid4().hex[:8]}")
    return DevKeys(key.kid, key.private_pem, key.public_pem)


@dataclass(frozen=True)
class PipelineConfig:
    """Where the pipeline's processes find their infrastructure, and what differs per run."""

    amqp_url: str
    log_dir: Path
    postgres_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_prefix: str = field(default_factory=lambda: f"pl_{uuid.uuid4().hex[:10]}_")
    log_level: str = "INFO"
    env: Mapping[str, str] = field(default_factory=dict)  # every process
    order_env: Mapping[str, str] = field(default_factory=dict)
    payment_env: Mapping[str, str] = field(default_factory=dict)
    catalog_env: Mapping[str, str] = field(default_factory=dict)
    proxy_order_broker: bool = False  # the order service reaches RabbitMQ through a TcpProxy
    services: tuple[str, ...] = (USER, CATALOG, ORDER, PAYMENT)  # the processes this pipeline runs
    user_address: str | None = None  # a user service run elsewhere (then USER is not started)

    @property
    def databases(self) -> tuple[str, ...]:
        """The databases of the services this pipeline runs."""
        return tuple(DATABASE_OF[name] for name in self.services)


class Pipeline:
    """User, order and payment processes of one run; start() them, close() when done."""

    def __init__(
        self,
        config: PipelineConfig,
        keys: DevKeys | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.keys = keys or dev_keys()
        self.issuer = TokenIssuer(
            SigningKey(self.keys.kid, self.keys.private_pem), ISSUER, AUDIENCE, ttl_seconds=3600
        )
        self.reports: list[str] = []
        self._report = report
        self.broker_proxy: TcpProxy | None = None
        self._supervisor: Supervisor | None = None
        self._stack = StackConfig(
            run_dir=config.log_dir,
            ports=Ports(
                order=free_port(),
                payment=free_port(),
                catalog=free_port(),
                user=(free_port(), 0),
                user_metrics=(free_port(), 0),
            ),
            postgres_admin_url=config.postgres_admin_url,
            redis_url=config.redis_url,
            amqp_url=config.amqp_url,
            database_prefix=config.database_prefix,
            log_level=config.log_level,
        )

    @property
    def user_address(self) -> str:
        """host:port of the user service the order service calls."""
        return self.config.user_address or f"127.0.0.1:{self._stack.ports.user[0]}"

    def _processes(self, order_amqp_url: str) -> list[ProcessSpec]:
        user_address = self.user_address
        # The user service declares the default topology when it relays; tests shorten delay
        # tiers in this vhost, so it does not relay here (user.* events are not under test).
        extra: dict[str, dict[str, str]] = {
            USER: {"OUTBOX_RELAY_ENABLED": "false"},
            ORDER: {
                "USER_SERVICE_ADDRESSES": user_address,
                "AMQP_URL": order_amqp_url,
                **self.config.order_env,
            },
            PAYMENT: dict(self.config.payment_env),
            CATALOG: dict(self.config.catalog_env),
        }
        processes = []
        for spec in build_processes(self._stack, self.keys):
            if spec.name in extra and spec.name in self.config.services:
                env = {**spec.env, **self.config.env, **extra[spec.name]}
                processes.append(replace(spec, env=env))
        return processes

    def _say(self, line: str) -> None:
        self.reports.append(line)
        if self._report is not None:
            self._report(line)

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor of the processes (after start())."""
        if self._supervisor is None:
            raise RuntimeError("the pipeline is not started")
        return self._supervisor

    async def start(self, within: float = 90.0) -> None:
        """Create the databases, start every process and wait until each is ready."""
        await ensure_databases(self._stack, self.config.databases)
        order_amqp = self.config.amqp_url
        if self.config.proxy_order_broker:
            parts = urlsplit(self.config.amqp_url)
            self.broker_proxy = TcpProxy(
                "rabbitmq", parts.hostname or "127.0.0.1", parts.port or 5672
            )
            await self.broker_proxy.start()
            order_amqp = self.broker_proxy.url_for(self.config.amqp_url)
        self._supervisor = Supervisor(
            self._processes(order_amqp), self.config.log_dir, self._say, restart=False
        )
        await self.supervisor.start()
        await self.supervisor.wait_ready(within=within)

    async def close(self, *, drop: bool = True, kill: bool = False) -> None:
        """Stop every process (SIGTERM, SIGKILL after a grace; kill=True: SIGKILL at once), then
        drop the databases."""
        if self._supervisor is not None:
            supervisor = self._supervisor
            supervisor.shutting_down = True  # all at once: the slice has no front door to drain
            if kill:
                await asyncio.gather(*(self.kill(name) for name in supervisor.children))
            await asyncio.gather(*(supervisor.stop(name, 10.0) for name in supervisor.children))
            await supervisor.stop_all(grace=10.0)
        if self.broker_proxy is not None:
            await self.broker_proxy.stop()
        if drop:
            await drop_databases(self._stack, self.config.databases)

    def url(self, name: str) -> str:
        """Base URL of an HTTP service (order or payment)."""
        return f"http://127.0.0.1:{self.port(name)}"

    def port(self, name: str) -> int:
        """The port a process listens on."""
        ports = self._stack.ports
        if name == USER:
            return int(self.user_address.rsplit(":", 1)[1])
        return {ORDER: ports.order, PAYMENT: ports.payment, CATALOG: ports.catalog}[name]

    def database_url(self, base: str) -> str:
        """Plain postgresql:// URL of one service's database (users, catalog, orders, payments)."""
        url = self._stack.database_url(base)
        return url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def stock_up(self, available: int = PLENTY) -> None:
        """Raise every regularly stocked sku of the seed catalog (100) to `available`."""
        conn = await asyncpg.connect(self.database_url("catalog"))
        try:
            await conn.execute("UPDATE stock SET available = $1 WHERE available >= 100", available)
        finally:
            await conn.close()

    async def set_stock(self, sku: str, available: int) -> None:
        """Set one sku's available stock (a test's starting point)."""
        conn = await asyncpg.connect(self.database_url("catalog"))
        try:
            await conn.execute("UPDATE stock SET available = $2 WHERE sku = $1", sku, available)
        finally:
            await conn.close()

    def log_path(self, name: str) -> Path:
        """The process's log file (its stdout and stderr, across restarts)."""
        return self.supervisor.children[name].log_path

    async def stop(self, name: str, grace: float = 10.0) -> None:
        """Stop one process gracefully (SIGTERM); it stays down until start_process()."""
        await self.supervisor.stop(name, grace)

    async def kill(self, name: str) -> None:
        """SIGKILL one process, as a crash would, and wait until it is gone."""
        child = self.supervisor.children[name]
        child.want_running = False
        process = child.process
        self.supervisor.kill(name, signal.SIGKILL)
        if process is not None:
            await process.wait()

    async def start_process(self, name: str, within: float = 60.0, **env: str) -> None:
        """(Re)start one process, with env changes if given, and wait until it is ready."""
        child = self.supervisor.children[name]
        if env:
            child.spec = replace(child.spec, env={**child.spec.env, **env})
        await self.supervisor.start([name])
        await self.supervisor.wait_ready([name], within=within)

    def token(self, user_id: int, roles: Sequence[str] = ("user",)) -> str:
        """A bearer token for user_id, signed with the key the processes trust."""
        return self.issuer.issue(str(user_id), list(roles))

    async def create_user(self, name: str = "Pipeline Shopper") -> int:
        """Create a user through the user service's gRPC API (as an admin); returns its id."""
        email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:10]}@shop.example"
        request = user_pb2.CreateUserRequest(
            email=email, name=name, roles=["user"], password=f"pw-{uuid.uuid4().hex}"
        )
        metadata = (("authorization", f"Bearer {self.token(0, ('admin',))}"),)
        async with grpc.aio.insecure_channel(self.user_address) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            reply = await stub.CreateUser(request, metadata=metadata, timeout=30)
        return int(reply.user.id)

    async def create_users(self, count: int, name: str = "Pipeline Shopper") -> list[int]:
        """count users, two at a time (password hashing is CPU-heavy by design)."""
        slots = asyncio.Semaphore(2)

        async def one() -> int:
            async with slots:
                return await self.create_user(name)

        return list(await asyncio.gather(*(one() for _ in range(count))))
