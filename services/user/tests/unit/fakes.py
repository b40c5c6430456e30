"""In-memory fakes of the service layer's ports: a user store with a unit of work (changes and
emitted events land only on commit, `committed` tells whether it did), the read side over the
same store and a fast password hasher. No infrastructure, no argon2."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from user_service.domain.errors import AlreadyExists, NotFound
from user_service.domain.field_mask import UserPatch
from user_service.domain.listing import UserFilter, UserPageTokens
from user_service.domain.model import User
from user_service.service_layer.unit_of_work import AbstractUnitOfWork, UserChange
from user_service.service_layer.users import UserService

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Row:
    user: User
    password_hash: str


@dataclass
class FakeStore:
    """The committed state: users by id, the events published (the outbox), a ticking clock."""

    rows: dict[int, Row] = field(default_factory=dict)
    events: list[UserChange] = field(default_factory=list)
    next_id: int = 1
    ticks: int = 0

    def now(self) -> datetime:
        self.ticks += 1
        return T0 + timedelta(seconds=self.ticks)


class FakeUserRepository:
    """Writes on a working copy of the store's rows (the unit's transaction)."""

    def __init__(self, store: FakeStore, rows: dict[int, Row]) -> None:
        self._store = store
        self.rows = rows

    def _email_taken(self, email: str, but: int | None = None) -> bool:
        return any(
            row.user.email.lower() == email.lower() and user_id != but
            for user_id, row in self.rows.items()
        )

    async def add(self, email: str, name: str, roles: tuple[str, ...], password_hash: str) -> User:
        if self._email_taken(email):
            raise AlreadyExists("a user with this email already exists")
        now = self._store.now()
        user = User(self._store.next_id, email, name, roles, now, now)
        self._store.next_id += 1
        self.rows[user.id] = Row(user, password_hash)
        return user

    async def update(self, user_id: int, patch: UserPatch, password_hash: str | None) -> User:
        row = self.rows.get(user_id)
        if row is None:
            raise NotFound(f"user {user_id} not found")
        if patch.email is not None and self._email_taken(patch.email, but=user_id):
            raise AlreadyExists("a user with this email already exists")
        user = replace(
            row.user,
            email=row.user.email if patch.email is None else patch.email,
            name=row.user.name if patch.name is None else patch.name,
            roles=row.user.roles if patch.roles is None else patch.roles,
            updated_at=self._store.now(),
        )
        self.rows[user_id] = Row(user, password_hash or row.password_hash)
        return user

    async def remove(self, user_id: int) -> User:
        row = self.rows.pop(user_id, None)
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return row.user


class FakeUnitOfWork(AbstractUnitOfWork):
    """Works on a copy of the store's rows; commit() swaps it in and appends the events."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self.store = store

    async def _begin(self) -> None:
        self.users = FakeUserRepository(self.store, dict(self.store.rows))

    async def _commit(self, changes: list[UserChange]) -> None:
        assert isinstance(self.users, FakeUserRepository)
        self.store.rows = self.users.rows
        self.store.events.extend(changes)

    async def _close(self) -> None:
        """Nothing to roll back: an uncommitted working copy is just dropped."""


class FakeReads:
    """The read side over the committed rows."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def get(self, user_id: int) -> User:
        row = self.store.rows.get(user_id)
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return row.user

    async def page(self, user_filter: UserFilter, after_id: int, limit: int) -> list[User]:
        matching = [
            row.user
            for user_id, row in sorted(self.store.rows.items())
            if user_id > after_id
            and (
                not user_filter.email_contains
                or user_filter.email_contains in row.user.email.lower()
            )
            and (not user_filter.role or user_filter.role in row.user.roles)
        ]
        return matching[:limit]

    async def credentials(self, email: str) -> tuple[User, str] | None:
        for row in self.store.rows.values():
            if row.user.email.lower() == email.lower():
                return row.user, row.password_hash
        return None


class FakeHasher:
    """Reversible "hashing": enough to tell which password a stored hash came from."""

    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.verified: list[str | None] = []

    async def hash(self, password: str) -> str:
        self.hashed.append(password)
        return f"hashed:{password}"

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash is not None and password_hash == f"hashed:{password}"


@dataclass
class World:
    """A UserService over fakes, with handles on what it wrote."""

    service: UserService
    store: FakeStore
    hasher: FakeHasher
    units: list[FakeUnitOfWork]


def make_world(secret: str = "unit-test-page-token-secret") -> World:
    store = FakeStore()
    hasher = FakeHasher()
    units: list[FakeUnitOfWork] = []

    def unit_of_work() -> FakeUnitOfWork:
        units.append(FakeUnitOfWork(store))
        return units[-1]

    service = UserService(FakeReads(store), unit_of_work, hasher, UserPageTokens(secret))
    return World(service, store, hasher, units)
