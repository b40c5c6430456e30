"""`python -m shop_common.migrations catalog_service` creates the schema and seeds the catalog;
running it again changes nothing (the seed inserts are idempotent, Alembic is at head)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.infra


async def test_the_migrate_command_seeds_the_catalog_once(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "shop_common.migrations", "catalog_service"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            products = (await conn.execute(text("SELECT count(*) FROM products"))).scalar()
            categories = (
                await conn.execute(text("SELECT count(DISTINCT category) FROM products"))
            ).scalar()
            negative = (
                await conn.execute(text("SELECT count(*) FROM stock WHERE available < 0"))
            ).scalar()
    finally:
        await engine.dispose()
    assert (products, categories, negative) == (50, 8, 0)
