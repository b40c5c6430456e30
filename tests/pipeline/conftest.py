"""Fixtures of the pipeline tests: user, catalog, order and payment as real processes.

Each test gets catalog, order and payment processes (shop_devstack.pipeline: `python -m <service>` on free
loopback ports) with their own databases and their own RabbitMQ vhost, calling one user service
process shared by the session (only read: users are created, never changed), plus helpers to call
the order API with a token, wait for an order's state and read the payments database, the broker
queues and a service's Prometheus counters. Delay tiers and poll intervals are shortened so that a
retry or a recovery takes a fraction of a second.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import httpx
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractRobustConnection
from shop_common.messaging import connect
from shop_devstack.layout import DevKeys
from shop_devstack.pipeline import (
    CATALOG,
    ORDER,
    PAYMENT,
    USER,
    Pipeline,
    PipelineConfig,
    dev_keys,
)
from shop_devstack.supervisor import tail
from shop_testing.isolation import VhostAdmin, unique_name

RETRY_DELAYS_MS = (100, 200, 400)
MAX_ATTEMPTS = 4
# Every process of the vhost declares the same (short) tiers; relays poll often.
FAST_ENV = {
    "RETRY_DELAYS_MS": "[" + ",".join(map(str, RETRY_DELAYS_MS)) + "]",
    "CONSUMER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    "BROKER_METRICS_INTERVAL_SECONDS": "0.5",
    "SHUTDOWN_GRACE_SECONDS": "3",
    "GRACE_PERIOD": "3",
    # Small pools: PostgreSQL's connection slots are shared with every other suite on the machine.
    "DATABASE_POOL_SIZE": "4",
    "DB_POOL_SIZE": "2",
    "DB_READ_POOL_SIZE": "2",
    "DB_MAX_OVERFLOW": "2",
}
WORK_QUEUES = ("catalog.order-events", "payment.order-events", "order.payment-results")
DLQS = tuple(f"{queue}.dlq" for queue in WORK_QUEUES)
# A seed product of the catalog (41.99 EUR); the pipelines stock it up (Pipeline.stock_up).
BOOK = {"sku": "BOOK-001", "quantity": 2}
T = TypeVar("T")


@pytest.fixture(scope="session")
def pipeline_keys() -> DevKeys:
    """One RSA key pair for the session: the processes trust it, the tests sign with it."""
    return dev_keys("pipeline-test")


class LoopThread:
    """An event loop in a thread: a module's processes outlive each test's own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 180.0) -> T:
        """Run coro on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def user_service(
    postgres_url: str,
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    pipeline_keys: DevKeys,
) -> Iterator[str]:
    """One user service (process + database) for the session; its address host:port.

    It is only looked up by the order services (users are never changed), and it does not relay
    user.* events, so every test's pipeline can share it.
    """
    config = PipelineConfig(
        amqp_url=amqp_url,
        log_dir=tmp_path_factory.mktemp("user-service") / "logs",
        postgres_admin_url=postgres_url,
        env=FAST_ENV,
        services=(USER,),
    )
    users = Pipeline(config, pipeline_keys)
    runner = LoopThread()
    try:
        runner.run(users.start())
        yield users.user_address
    finally:
        runner.run(users.close(kill=True))
        runner.close()


MakePipeline = Callable[..., Awaitable[Pipeline]]


@pytest_asyncio.fixture
async def make_pipeline(
    amqp_vhost_url: str,
    postgres_url: str,
    redis_url: str,
    tmp_path: Path,
    pipeline_keys: DevKeys,
    user_service: str,
) -> AsyncIterator[MakePipeline]:
    """Factory: start user, order and payment (env overrides per service); stopped after."""
    made: list[Pipeline] = []

    async def make(
        *,
        order_env: dict[str, str] | None = None,
        payment_env: dict[str, str] | None = None,
        catalog_env: dict[str, str] | None = None,
        proxy_order_broker: bool = False,
    ) -> Pipeline:
        if made:
            raise RuntimeError("one pipeline per test: they would share the vhost")
        config = PipelineConfig(
            amqp_url=amqp_vhost_url,
            log_dir=tmp_path / "logs",
            postgres_admin_url=postgres_url,
            redis_url=redis_url,
            env=FAST_ENV,
            order_env=order_env or {},
            payment_env=payment_env or {},
            catalog_env=catalog_env or {},
            proxy_order_broker=proxy_order_broker,
            services=(CATALOG, ORDER, PAYMENT),
            user_address=user_service,
        )
        pipeline = Pipeline(config, pipeline_keys)
        made.append(pipeline)
        await pipeline.start()
        await pipeline.stock_up()
        return pipeline

    yield make
    for pipeline in made:
        await pipeline.close(kill=True)  # nothing left to prove: no graceful drain


@pytest_asyncio.fixture
async def pipeline(make_pipeline: MakePipeline) -> Pipeline:
    """The pipeline with the default (fast) settings, for this test alone."""
    return await make_pipeline()


@pytest.fixture(scope="module")
def shared_pipeline(
    request: pytest.FixtureRequest,
    postgres_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    pipeline_keys: DevKeys,
    user_service: str,
) -> Iterator[Pipeline]:
    """One pipeline for a module whose tests never stop a process (each uses its own users).

    Its vhost and databases are the module's own; its processes are supervised from a loop
    thread, so only the HTTP, gRPC, SQL and AMQP calls of a test run on the test's loop.
    """
    admin: VhostAdmin = request.getfixturevalue("_vhost_admin")
    vhost = unique_name("t")
    amqp_url = admin.create(vhost)
    config = PipelineConfig(
        amqp_url=amqp_url,
        log_dir=tmp_path_factory.mktemp("pipeline") / "logs",
        postgres_admin_url=postgres_url,
        redis_url=redis_url,
        env=FAST_ENV,
        services=(CATALOG, ORDER, PAYMENT),
        user_address=user_service,
    )
    pipeline = Pipeline(config, pipeline_keys)
    runner = LoopThread()
    try:
        runner.run(pipeline.start())
        runner.run(pipeline.stock_up())
        yield pipeline
    finally:
        runner.run(pipeline.close(kill=True))
        runner.close()
        admin.delete(vhost)


@pytest_asyncio.fixture
async def broker(amqp_vhost_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """The test's own connection to the vhost (to inspect queues and publish by hand)."""
    connection = await connect(amqp_vhost_url, attempts=3, name="pipeline-test")
    yield connection
    await connection.close()


def vhost_of(amqp_url: str) -> str:
    """The vhost name in an AMQP URL."""
    return unquote(urlsplit(amqp_url).path.lstrip("/"))


@pytest.fixture
def drop_connections(request: pytest.FixtureRequest, amqp_vhost_url: str) -> Callable[[], int]:
    """Close every broker connection of this test's vhost (a sync call); how many were closed."""
    admin: VhostAdmin = request.getfixturevalue("_vhost_admin")
    return lambda: admin.close_connections(vhost_of(amqp_vhost_url))


def logs_of(pipeline: Pipeline, names: Iterable[str] = (CATALOG, ORDER, PAYMENT)) -> str:
    """The last lines of the services' logs, for failure messages."""
    return "\n".join(
        f"--- {name} ({pipeline.log_path(name)}):\n{tail(pipeline.log_path(name), 15)}"
        for name in names
    )


class Shop:
    """The order and payment HTTP APIs as one user (or admin) calls them directly."""

    def __init__(
        self, pipeline: Pipeline, http: httpx.AsyncClient, token: str, user_id: int
    ) -> None:
        self.pipeline = pipeline
        self.http = http
        self.user_id = user_id
        self.headers = {"Authorization": f"Bearer {token}"}

    def as_(self, token: str, user_id: int) -> Shop:
        """The same client with another caller's token."""
        return Shop(self.pipeline, self.http, token, user_id)

    async def place(
        self,
        items: list[dict[str, Any]] | None = None,
        currency: str = "EUR",
        key: str | None = None,
    ) -> httpx.Response:
        """POST /orders (with an Idempotency-Key, fresh unless given)."""
        headers = {**self.headers, "Idempotency-Key": key or uuid.uuid4().hex}
        body = {"items": items or [BOOK], "currency": currency}
        return await self.http.post(
            f"{self.pipeline.url(ORDER)}/orders", json=body, headers=headers
        )

    async def place_ok(self, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Place an order that must be accepted; returns its JSON."""
        response = await self.place(items)
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def get(self, order_id: str) -> httpx.Response:
        """GET /orders/{id}."""
        return await self.http.get(
            f"{self.pipeline.url(ORDER)}/orders/{order_id}", headers=self.headers
        )

    async def cancel(self, order_id: str) -> httpx.Response:
        """POST /orders/{id}/cancel."""
        return await self.http.post(
            f"{self.pipeline.url(ORDER)}/orders/{order_id}/cancel", headers=self.headers
        )

    async def status(self, order_id: str) -> str:
        """The order's status now."""
        response = await self.get(order_id)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    async def wait_status(
        self, order_ids: Iterable[str], wanted: str, *, within: float = 30.0
    ) -> None:
        """Poll until every order is in `wanted` (a deadline, not a sleep)."""
        pending = set(order_ids)
        deadline = time.monotonic() + within
        while pending:
            states = await asyncio.gather(*(self.status(order_id) for order_id in pending))
            pending = {o for o, s in zip(pending, states, strict=True) if s != wanted}
            if not pending:
                return
            if time.monotonic() > deadline:
                seen = sorted(set(states))
                raise AssertionError(
                    f"{len(pending)} orders not {wanted} after {within} s (states seen: {seen})\n"
                    + logs_of(self.pipeline)
                )
            await asyncio.sleep(0.1)

    async def provider(self, admin_token: str, **switches: Any) -> dict[str, Any]:
        """PUT the simulated provider's fault switches (admin)."""
        response = await self.http.put(
            f"{self.pipeline.url(PAYMENT)}/payments/admin/provider",
            json=switches,
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One HTTP client for the test."""
    async with httpx.AsyncClient(timeout=15.0) as client:
        yield client


async def shop_for(pipeline: Pipeline, http: httpx.AsyncClient) -> Shop:
    """A new user of the pipeline's user service, ready to order."""
    user_id = await pipeline.create_user()
    return Shop(pipeline, http, pipeline.token(user_id), user_id)


async def payments_of(pipeline: Pipeline, order_ids: Iterable[str] | None = None) -> list[Any]:
    """Rows of the payments database (order_id, kind, status), optionally for some orders."""
    conn = await asyncpg.connect(pipeline.database_url("payments"))
    try:
        query = "SELECT order_id::text AS order_id, kind, status FROM payments"
        if order_ids is None:
            return list(await conn.fetch(query))
        return list(await conn.fetch(query + " WHERE order_id = ANY($1::uuid[])", list(order_ids)))
    finally:
        await conn.close()


async def order_states(pipeline: Pipeline) -> dict[str, int]:
    """How many orders are in each status (the orders database)."""
    conn = await asyncpg.connect(pipeline.database_url("orders"))
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    finally:
        await conn.close()
    return {row["status"]: int(row["n"]) for row in rows}


async def orders_of(pipeline: Pipeline, user_id: int) -> list[str]:
    """Ids of one user's orders (the orders database)."""
    conn = await asyncpg.connect(pipeline.database_url("orders"))
    try:
        rows = await conn.fetch("SELECT id::text AS id FROM orders WHERE user_id = $1", user_id)
    finally:
        await conn.close()
    return [row["id"] for row in rows]


async def outbox_rows(pipeline: Pipeline, routing_key: str, database: str = "orders") -> list[Any]:
    """A service's outbox rows of one routing key (envelope, sent_at), oldest first: the order
    service's unless `database` names another (catalog for stock.*)."""
    conn = await asyncpg.connect(pipeline.database_url(database))
    try:
        return list(
            await conn.fetch(
                "SELECT aggregate_id, envelope::text AS envelope, sent_at FROM outbox "
                "WHERE routing_key = $1 ORDER BY id",
                routing_key,
            )
        )
    finally:
        await conn.close()


async def queue_depth(connection: AbstractRobustConnection, name: str) -> int:
    """Messages ready in a queue (passive declare)."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def dlq_depths(connection: AbstractRobustConnection) -> dict[str, int]:
    """Depth of every DLQ of the order pipeline."""
    return {name: await queue_depth(connection, name) for name in DLQS}


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


async def counter(http: httpx.AsyncClient, base_url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample's values at base_url/metrics whose labels include `labels`."""
    response = await http.get(f"{base_url}/metrics")
    assert response.status_code == 200, response.text
    total = 0.0
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match["value"])
    return total


async def publish_raw(
    connection: AbstractRobustConnection,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish bytes as they are (confirmed), to an exchange or ("" ) straight to a queue."""
    channel = await connection.channel(publisher_confirms=True)
    try:
        target = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            headers=headers or {},
        )
        await target.publish(message, routing_key=routing_key)
    finally:
        await channel.close()
