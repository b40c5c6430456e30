"""Apply the Alembic migrations: `python -m order_service.migrate` (also run on server start)."""

from __future__ import annotations

from pathlib import Path

from shop_common.migrations import run_migrations_cli, upgrade_to_head

from order_service.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Several instances may start at once: one advisory lock per service serialises their migrations.
LOCK_KEY = 0x4F52_4452  # "ORDR"


async def migrate(database_url: str) -> None:
    """Upgrade the database at database_url to the newest revision."""
    await upgrade_to_head(database_url, MIGRATIONS, LOCK_KEY)


def main() -> None:
    """Entry point of `python -m order_service.migrate`."""
    run_migrations_cli(Settings(), MIGRATIONS, LOCK_KEY)


if __name__ == "__main__":
    main()
