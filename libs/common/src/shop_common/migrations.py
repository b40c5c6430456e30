"""The one way a service applies its Alembic migrations, at start or as a job:

    python -m shop_common.migrations <package>      # e.g. order_service (compose's *-migrate jobs)
    await migrate("order_service", database_url)   # each service's bootstrap, before it serves

A service's migrations are the Alembic scripts in `<package>/migrations/`; its settings are
`<package>.settings.Settings`. Several instances of a service may start at once; a
transaction-scoped advisory lock (one key per service, derived from its package name) serialises
their upgrades, so the second finds the schema already at head.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.logging import configure_logging, get_logger
from shop_common.observability.propagation import untraced
from shop_common.settings import ServiceSettings


def alembic_config(migrations: Path) -> Config:
    """An Alembic config pointing at a service's migrations folder (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    return config


def _upgrade(connection: Connection, migrations: Path, lock_key: int) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
    config = alembic_config(migrations)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_to_head(database_url: str, migrations: Path, lock_key: int) -> None:
    """Upgrade the database at database_url to the newest revision in migrations."""
    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, migrations, lock_key)
    finally:
        await engine.dispose()


def migrations_of(package: str) -> Path:
    """The Alembic scripts folder of a service package (`<package>/migrations`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package!r} is not an installed package")
    folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    if not (folder / "env.py").is_file():
        raise ValueError(f"{package!r} has no Alembic migrations folder ({folder})")
    return folder


def lock_key_of(package: str) -> int:
    """The advisory lock key of a service's migrations: stable, one per package."""
    return zlib.crc32(f"migrations:{package}".encode())


async def migrate(package: str, database_url: str) -> None:
    """Upgrade the service's database to its newest revision (serialised across instances);
    its statements are not traced (start-up bookkeeping, shop_common.observability)."""
    with untraced():
        await upgrade_to_head(database_url, migrations_of(package), lock_key_of(package))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m shop_common.migrations <package>`: migrate with the service's own settings."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m shop_common.migrations <service package>\n")
        return 2
    package = args[0]
    settings: ServiceSettings = importlib.import_module(f"{package}.settings").Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    asyncio.run(migrate(package, settings.database_url))
    get_logger(__name__).info("migrations_applied", service=settings.service_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
