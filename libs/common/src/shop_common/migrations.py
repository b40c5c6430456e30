"""The one way a service applies its Alembic migrations: at start, under an advisory lock.

Several instances of a service may start at once; a transaction-scoped advisory lock (one key per
service) serialises their upgrades, so the second finds the schema already at head.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.logging import configure_logging, get_logger
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


def run_migrations_cli(settings: ServiceSettings, migrations: Path, lock_key: int) -> None:
    """Body of each service's `python -m <service>.migrate`."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    asyncio.run(upgrade_to_head(settings.database_url, migrations, lock_key))
    get_logger(__name__).info("migrations applied", service=settings.service_name)
