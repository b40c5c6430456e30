"""Use cases of the user service, with their authorization rules.

A user may read and update itself (but not its own roles); CreateUser, ListUsers,
DeleteUser, granting roles and touching anyone else need the admin role. (Creating accounts is
an admin's job: were any caller allowed, one user could mint accounts without end, each with its
own per-user rate-limit budget.) The one exception is least privilege for a front end's sign-up:
a caller with the `registrar` role may create shopper accounts (no role but `user`) and nothing
else, so the web service's sign-up account is not an admin.

Reads go through UserReads (no transaction: GetUser is the hot path); every change runs in a
unit of work with the event it emits, so the event is published exactly when the change commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shop_common.auth import Principal, account_creation_refusal

from user_service.domain.errors import PermissionDenied, Unauthenticated
from user_service.domain.field_mask import build_patch, effective_paths
from user_service.domain.listing import UserPageTokens, page_size_or_default, parse_filter
from user_service.domain.model import (
    User,
    UserEventType,
    has_control_characters,
    normalize_email,
    validate_name,
    validate_password,
    validate_roles,
)
from user_service.service_layer.ports import PasswordHasher, UserReads
from user_service.service_layer.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class Page:
    """One ListUsers page and the token of the next ("" at the end)."""

    users: list[User]
    next_page_token: str


def _require_admin(caller: Principal, action: str) -> None:
    if not caller.is_admin:
        raise PermissionDenied(f"{action} needs the admin role")


def _require_may_create(caller: Principal, roles: Sequence[str]) -> None:
    refusal = account_creation_refusal(caller.roles, roles)
    if refusal is not None:
        raise PermissionDenied(refusal)


def _require_self_or_admin(caller: Principal, user_id: int) -> None:
    if caller.is_admin:
        return
    if not caller.subject.isdigit() or int(caller.subject) != user_id:
        raise PermissionDenied("a user may only read or change itself")


class UserService:
    """The application service behind the gRPC servicer."""

    def __init__(
        self,
        reads: UserReads,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        page_tokens: UserPageTokens,
    ) -> None:
        self.reads = reads
        self.uow = uow
        self.hasher = hasher
        self.page_tokens = page_tokens

    async def get(self, caller: Principal, user_id: int) -> User:
        """One user (self or admin)."""
        _require_self_or_admin(caller, user_id)
        return await self.reads.get(user_id)

    async def create(
        self,
        caller: Principal,
        *,
        email: str,
        name: str,
        roles: Sequence[str],
        password: str,
        request_id: str | None,
    ) -> User:
        """Create a user (admin; a registrar creates shopper accounts only)."""
        _require_may_create(caller, roles)
        email = normalize_email(email)
        name = validate_name(name)
        checked_roles = validate_roles(list(roles))
        validate_password(password)
        password_hash = await self.hasher.hash(password)
        async with self.uow() as uow:
            user = await uow.users.add(email, name, checked_roles, password_hash)
            uow.emit(UserEventType.CREATED, user, correlation_id=request_id)
            await uow.commit()
        return user

    async def update(
        self,
        caller: Principal,
        user_id: int,
        *,
        paths: Sequence[str],
        email: str,
        name: str,
        roles: Sequence[str],
        password: str,
        request_id: str | None,
    ) -> User:
        """Apply exactly the mask's paths (empty mask: every non-default field)."""
        _require_self_or_admin(caller, user_id)
        chosen = effective_paths(paths, email=email, name=name, roles=roles, password=password)
        patch = build_patch(chosen, email=email, name=name, roles=roles, password=password)
        if patch.roles is not None:
            _require_admin(caller, "changing roles")
        if patch.is_empty:
            return await self.reads.get(user_id)
        password_hash = await self.hasher.hash(patch.password) if patch.password else None
        async with self.uow() as uow:
            user = await uow.users.update(user_id, patch, password_hash)
            uow.emit(UserEventType.UPDATED, user, correlation_id=request_id)
            await uow.commit()
        return user

    async def delete(self, caller: Principal, user_id: int, *, request_id: str | None) -> User:
        """Delete a user (admin only)."""
        _require_admin(caller, "DeleteUser")
        async with self.uow() as uow:
            user = await uow.users.remove(user_id)
            uow.emit(UserEventType.DELETED, user, correlation_id=request_id)
            await uow.commit()
        return user

    async def list_page(
        self, caller: Principal, *, page_size: int, page_token: str, filter_text: str
    ) -> Page:
        """One keyset page of users matching filter_text (admin only)."""
        _require_admin(caller, "ListUsers")
        size = page_size_or_default(page_size)
        user_filter = parse_filter(filter_text)
        after_id = self.page_tokens.decode(page_token, user_filter) if page_token else 0
        rows = await self.reads.page(user_filter, after_id, size + 1)
        page, more = rows[:size], len(rows) > size
        token = self.page_tokens.encode(page[-1].id, user_filter) if more else ""
        return Page(page, token)

    async def authenticate(self, email: str, password: str) -> User:
        """The user whose email and password match; Unauthenticated otherwise (same message)."""
        email = email.strip()
        # No stored email holds a control character, and PostgreSQL refuses NUL in a query.
        found = None if has_control_characters(email) else await self.reads.credentials(email)
        user, password_hash = found if found is not None else (None, None)
        if not await self.hasher.verify(password_hash, password) or user is None:
            raise Unauthenticated("email or password is wrong")
        return user

    def may_watch(self, caller: Principal, user_ids: Sequence[int]) -> None:
        """Subscribing to everyone needs admin; a user may watch itself."""
        if caller.is_admin:
            return
        if not user_ids:
            raise PermissionDenied("subscribing to every user needs the admin role")
        for user_id in user_ids:
            _require_self_or_admin(caller, user_id)
