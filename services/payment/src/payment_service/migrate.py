"""Apply the Alembic migrations: `python -m payment_service.migrate` (also run on server start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from shop_common.logging import configure_logging, get_logger
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from payment_service.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Several instances may start at once: one advisory lock serialises their migrations.
_LOCK_KEY = 0x5041_5953  # "PAYS"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(database_url: str) -> None:
    """Upgrade the database at database_url to the newest revision."""
    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


def main() -> None:
    """Entry point of `python -m payment_service.migrate`."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    asyncio.run(migrate(settings.database_url))
    get_logger(__name__).info("migrations applied")


if __name__ == "__main__":
    main()
