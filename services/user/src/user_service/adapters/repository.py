"""User writes on PostgreSQL (SQLAlchemy 2 Core), on the connection of a unit of work
(implements service_layer.unit_of_work.UserRepository); the transaction, the outbox row and
the NOTIFY are the unit of work's (unit_of_work.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from user_service.adapters.tables import PUBLIC_COLUMNS, user_from_row, users
from user_service.domain.errors import AlreadyExists, NotFound
from user_service.domain.field_mask import UserPatch
from user_service.domain.model import User


def _is_email_conflict(exc: IntegrityError) -> bool:
    return "users_email_lower_key" in str(exc.orig)


class SqlUserRepository:
    """Inserts, updates and deletes users in the caller's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, email: str, name: str, roles: tuple[str, ...], password_hash: str) -> User:
        """Insert a user; AlreadyExists when the email is taken."""
        statement = (
            insert(users)
            .values(
                email=email,
                name=name,
                roles=list(roles),
                password_hash=password_hash,
                created_at=func.now(),
                updated_at=func.now(),
            )
            .returning(*PUBLIC_COLUMNS)
        )
        try:
            row = (await self._conn.execute(statement)).one()
        except IntegrityError as exc:
            if _is_email_conflict(exc):
                raise AlreadyExists("a user with this email already exists") from exc
            raise
        return user_from_row(row)

    async def update(self, user_id: int, patch: UserPatch, password_hash: str | None) -> User:
        """Apply patch (only its non-None fields); NotFound / AlreadyExists."""
        values: dict[str, Any] = {"updated_at": func.now()}
        if patch.email is not None:
            values["email"] = patch.email
        if patch.name is not None:
            values["name"] = patch.name
        if patch.roles is not None:
            values["roles"] = list(patch.roles)
        if password_hash is not None:
            values["password_hash"] = password_hash
        statement = (
            update(users).where(users.c.id == user_id).values(**values).returning(*PUBLIC_COLUMNS)
        )
        try:
            row = (await self._conn.execute(statement)).first()
        except IntegrityError as exc:
            if _is_email_conflict(exc):
                raise AlreadyExists("a user with this email already exists") from exc
            raise
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return user_from_row(row)

    async def remove(self, user_id: int) -> User:
        """Delete the user; NotFound when absent."""
        row = (
            await self._conn.execute(
                delete(users).where(users.c.id == user_id).returning(*PUBLIC_COLUMNS)
            )
        ).first()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return user_from_row(row)
