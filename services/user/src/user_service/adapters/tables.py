"""SQLAlchemy Core tables (the schema itself is owned by the Alembic migrations) and the
mapping of a users row to the domain's User."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from user_service.domain.model import User

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("name", String(200), nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every column but the password hash, in the order the read fast path (reads.py) selects them.
PUBLIC_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.name,
    users.c.roles,
    users.c.created_at,
    users.c.updated_at,
)


def user_from_row(row: Any) -> User:
    """A User from a row holding PUBLIC_COLUMNS (by name)."""
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        roles=tuple(row.roles),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
