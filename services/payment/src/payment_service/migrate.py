"""Apply the Alembic migrations: `python -m payment_service.migrate` (also run on server start)."""

from __future__ import annotations

from pathlib import Path

from shop_common.migrations import run_migrations_cli, upgrade_to_head

from payment_service.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Several instances may start at once: one advisory lock per service serialises their migrations.
LOCK_KEY = 0x5041_5953  # "PAYS"


async def migrate(database_url: str) -> None:
    """Upgrade the database at database_url to the newest revision."""
    await upgrade_to_head(database_url, MIGRATIONS, LOCK_KEY)


def main() -> None:
    """Entry point of `python -m payment_service.migrate`."""
    run_migrations_cli(Settings(), MIGRATIONS, LOCK_KEY)


if __name__ == "__main__":
    main()
