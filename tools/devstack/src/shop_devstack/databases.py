"""Create each service's database if missing, then apply its migrations (once, before start)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path

import asyncpg

from shop_devstack.layout import ProcessSpec, StackConfig
from shop_devstack.supervisor import child_environment


class MigrationError(Exception):
    """A service's migrate command failed; str() names it and the log file."""


async def ensure_databases(config: StackConfig, bases: Iterable[str]) -> list[str]:
    """CREATE DATABASE for each missing one; return the names created."""
    created: list[str] = []
    conn = await asyncpg.connect(config.postgres_admin_url)
    try:
        existing = {row["datname"] for row in await conn.fetch("SELECT datname FROM pg_database")}
        for base in bases:
            name = config.database_name(base)
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    finally:
        await conn.close()
    return created


async def drop_databases(config: StackConfig, bases: Iterable[str]) -> None:
    """DROP DATABASE ... WITH (FORCE) for each (test runs clean up after themselves)."""
    conn = await asyncpg.connect(config.postgres_admin_url)
    try:
        for base in bases:
            await conn.execute(
                f'DROP DATABASE IF EXISTS "{config.database_name(base)}" WITH (FORCE)'
            )
    finally:
        await conn.close()


async def migrate(process: ProcessSpec, log_file: Path, env: Mapping[str, str]) -> None:
    """Run `python -m shop_common.migrations <package>` with the process's environment; raise on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        child = await asyncio.create_subprocess_exec(
            *process.migrate_command,
            env=child_environment(env),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            code = await asyncio.wait_for(child.wait(), timeout=120)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise MigrationError(
                f"the migrations of {process.package} took over 120 s (see {log_file})"
            ) from None
    if code != 0:
        raise MigrationError(
            f"the migrations of {process.package} exited with {code} (see {log_file})"
        )
