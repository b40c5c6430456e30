"""pytest plugin (entry point `shop_infra`): real infrastructure for every test suite.

Session fixtures find each service once (see `infra.resolve`); function fixtures give each
test its own database, Redis key prefix and RabbitMQ vhost, and remove them afterwards.
With REQUIRE_INFRA=1 a missing service ends the run with one line; without it the tests
that need the service skip with that same line.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from shop_testing import infra
from shop_testing.isolation import (
    VhostAdmin,
    as_asyncpg_sqlalchemy,
    create_database,
    delete_prefix,
    drop_database,
    unique_name,
)
from shop_testing.redis_cluster import LocalRedisCluster, RedisClusterError

_containers = infra.Containers()
_endpoints: dict[str, infra.Endpoint | str] = {}


def _endpoint(kind: infra.Kind) -> infra.Endpoint:
    """Resolve once per session; a failure is remembered, not retried by every test."""
    if kind not in _endpoints:
        try:
            _endpoints[kind] = infra.resolve(kind, _containers)
        except infra.InfrastructureMissingError as exc:
            _endpoints[kind] = str(exc)
    found = _endpoints[kind]
    if isinstance(found, str):
        if infra.infra_required():
            pytest.exit(f"REQUIRE_INFRA=1: {found}", returncode=3)
        pytest.skip(found)
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the containers this session started, if any."""
    _containers.stop_all()


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run set-up I/O on a private loop in a thread: factories are also called from async tests."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The administrative URL (postgresql://…/postgres) of the PostgreSQL under test."""
    return _endpoint("postgres").url


@pytest.fixture
def make_database(postgres_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: make_database("orders") creates a fresh database; returns its asyncpg URL.

    Every database made is dropped (with FORCE) when the test ends.
    """
    made: list[str] = []

    def make(label: str = "db") -> str:
        name = unique_name(f"t_{label}")
        url = _run(create_database(postgres_url, name))
        made.append(name)
        return as_asyncpg_sqlalchemy(url)

    yield make
    for name in made:
        _run(drop_database(postgres_url, name))


@pytest.fixture
def database_url(make_database: Callable[[str], str]) -> str:
    """A fresh, empty database for this test (postgresql+asyncpg:// URL)."""
    return make_database("db")


# --- Redis ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the Redis under test."""
    return _endpoint("redis").url


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A key prefix (and pub/sub channel prefix) unique to this test; its keys are deleted after."""
    prefix = unique_name("t") + ":"
    yield prefix
    _run(delete_prefix(redis_url, prefix))


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A redis.asyncio client on this test's event loop, closed after the test."""
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


# --- Redis Cluster ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalRedisCluster | None]:
    """A local Redis Cluster (3 primaries, 1 replica each) for the session.

    None when REDIS_CLUSTER_URL names an existing cluster (then nodes cannot be killed).
    """
    if os.environ.get("REDIS_CLUSTER_URL"):
        yield None
        return
    cluster = LocalRedisCluster()
    try:
        cluster.start()
    except RedisClusterError as exc:
        if infra.infra_required():
            pytest.exit(f"REQUIRE_INFRA=1: {exc}", returncode=3)
        pytest.skip(str(exc))
    atexit.register(cluster.stop)  # also on an interrupted session
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: LocalRedisCluster | None) -> str:
    """The URL of one node of the Redis Cluster under test (REDIS_CLUSTER_URL or local)."""
    return os.environ.get("REDIS_CLUSTER_URL") or (redis_cluster.url if redis_cluster else "")


# --- RabbitMQ ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The URL of the RabbitMQ under test (its default vhost)."""
    return _endpoint("rabbitmq").url


@pytest.fixture(scope="session")
def _vhost_admin(amqp_url: str) -> VhostAdmin:
    return VhostAdmin(amqp_url, _endpoint("rabbitmq").source)


@pytest.fixture
def amqp_vhost_url(_vhost_admin: VhostAdmin) -> Iterator[str]:
    """The URL of a fresh RabbitMQ vhost for this test; deleted with all its queues after."""
    vhost = unique_name("t")
    url = _vhost_admin.create(vhost)
    yield url
    _vhost_admin.delete(vhost)
