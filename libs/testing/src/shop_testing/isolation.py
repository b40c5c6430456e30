"""Per-test isolation on shared infrastructure: a database, a key prefix, a vhost."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import redis.asyncio as aioredis


def unique_name(prefix: str = "t") -> str:
    """A short name unique to this test run, safe as a database, vhost or key prefix."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def with_database(url: str, database: str) -> str:
    """The same PostgreSQL URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def as_asyncpg_sqlalchemy(url: str) -> str:
    """postgresql://… → postgresql+asyncpg://… (SQLAlchemy's async dialect)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme.startswith("postgres") else url


async def create_database(admin_url: str, name: str) -> str:
    """Create an empty database and return its plain postgresql:// URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop a database, disconnecting whoever is still connected to it."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under a prefix with SCAN (never KEYS); return how many."""
    client = aioredis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


class VhostAdmin:
    """Creates and deletes RabbitMQ vhosts: rabbitmqctl when local, else the management API."""

    def __init__(self, amqp_url: str, source: str) -> None:
        self.amqp_url = amqp_url
        parts = urlsplit(amqp_url)
        self.user = parts.username or "guest"
        self.password = parts.password or "guest"
        self.host = parts.hostname or "127.0.0.1"
        self.use_ctl = source == "local" and shutil.which("rabbitmqctl") is not None

    def url_for(self, vhost: str) -> str:
        """The AMQP URL of a vhost on the same broker."""
        parts = urlsplit(self.amqp_url)
        return urlunsplit(parts._replace(path=f"/{quote(vhost, safe='')}"))

    def _ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - fixed executable, arguments are our own names
            ["rabbitmqctl", "-q", *args],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _api(self, method: str, path: str, json: object | None = None) -> None:
        response = httpx.request(
            method,
            f"http://{self.host}:15672/api{path}",
            auth=(self.user, self.password),
            json=json,
            timeout=10,
        )
        if response.status_code >= 400 and not (method == "DELETE" and response.status_code == 404):
            response.raise_for_status()

    def create(self, vhost: str) -> str:
        """Create a vhost with full permissions for our user; return its URL."""
        if self.use_ctl:
            self._ctl("add_vhost", vhost)
            self._ctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")
        else:
            self._api("PUT", f"/vhosts/{quote(vhost, safe='')}")
            self._api(
                "PUT",
                f"/permissions/{quote(vhost, safe='')}/{quote(self.user, safe='')}",
                {"configure": ".*", "write": ".*", "read": ".*"},
            )
        return self.url_for(vhost)

    def close_connections(self, vhost: str) -> int:
        """Close every client connection of one vhost (other tests share the broker); how many."""
        if self.use_ctl:
            listing = subprocess.run(
                ["rabbitmqctl", "-q", "list_connections", "pid", "vhost"],  # noqa: S607
                check=True,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            pids = [
                parts[0]
                for parts in (line.split("\t") for line in listing.splitlines())
                if len(parts) == 2 and parts[1] == vhost
            ]
            for pid in pids:  # a connection gone meanwhile is not an error
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._ctl("close_connection", pid, "test: connections of the vhost dropped")
            return len(pids)
        response = httpx.get(
            f"http://{self.host}:15672/api/vhosts/{quote(vhost, safe='')}/connections",
            auth=(self.user, self.password),
            timeout=10,
        )
        response.raise_for_status()
        names = [str(connection["name"]) for connection in response.json()]
        for name in names:
            self._api("DELETE", f"/connections/{quote(name, safe='')}")
        return len(names)

    def delete(self, vhost: str) -> None:
        """Delete a vhost and everything in it."""
        if self.use_ctl:
            self._ctl("delete_vhost", vhost)
        else:
            self._api("DELETE", f"/vhosts/{quote(vhost, safe='')}")
