"""In-memory fakes of the gateway's stores and the user service, for the service-layer unit tests.

Each has a `down` switch: while it is set, every call raises what the real adapter raises when
Redis (or the user service) cannot be asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.domain.cache_rules import CachedResponse
from gateway.domain.errors import StoreUnavailableError
from gateway.domain.login import (
    AuthenticatedUser,
    AuthenticatorUnavailableError,
    CredentialsRefusedError,
)
from gateway.domain.login_throttle import Admission, Failure, Policy
from gateway.domain.replies import Reply


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRateLimitStore:
    """A fixed window per (route, identity) in a dict; `hits` records every call."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.hits: list[tuple[str, str, int, int]] = []
        self.down = False

    async def hit(
        self, route_name: str, identity: str, limit: int, window_ms: int
    ) -> tuple[bool, int, int]:
        self.hits.append((route_name, identity, limit, window_ms))
        if self.down:
            raise StoreUnavailableError("ConnectionError")
        count = self.counts.get((route_name, identity), 0)
        if count >= limit:
            return False, 0, window_ms
        self.counts[(route_name, identity)] = count + 1
        return True, limit - count - 1, window_ms


@dataclass
class FakeResponseCacheStore:
    """Entries and their scope/tag indexes in dicts (TTL recorded, not enforced)."""

    prefix: str = "t:rc:"
    entries: dict[str, CachedResponse] = field(default_factory=dict)
    ttls: dict[str, float] = field(default_factory=dict)
    indexes: dict[str, set[str]] = field(default_factory=dict)
    down: bool = False

    async def get(self, key: str) -> CachedResponse | None:
        if self.down:
            raise StoreUnavailableError("ConnectionError('down')")
        return self.entries.get(key)

    async def put(
        self,
        key: str,
        scope: str,
        response: CachedResponse,
        ttl_seconds: float,
        tags: Iterable[str] = (),
    ) -> None:
        if self.down:
            raise StoreUnavailableError("ConnectionError('down')")
        self.entries[key] = response
        self.ttls[key] = ttl_seconds
        for index in (scope, *tags):
            self.indexes.setdefault(index, set()).add(key)

    async def evict_scope(self, scope: str) -> int:
        if self.down:
            raise StoreUnavailableError("ConnectionError('down')")
        keys = self.indexes.pop(scope, set())
        return sum(self.entries.pop(k, None) is not None for k in keys)


class FakeBody:
    """A streamed backend body (gateway.domain.replies.StreamedBody)."""

    def __init__(self, data: bytes, *, declared: bool = True) -> None:
        self.data = data
        self.content_length = len(data) if declared else None
        self.released = False

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self.data

    async def buffer(self, limit: int) -> bytes | None:
        return self.data if len(self.data) <= limit else None

    def release(self) -> None:
        self.released = True


class CountingFetch:
    """A fetch (the backend behind the cache step) that counts its calls."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.calls = 0
        self.reply = reply

    def _next(self) -> Reply:
        if self.reply is not None:
            return Reply(self.reply.status, list(self.reply.headers), self.reply.body)
        body = f'{{"n":{self.calls}}}'.encode()
        return Reply(200, [("Content-Type", "application/json")], body)

    async def __call__(self) -> Reply:
        self.calls += 1
        return self._next()


class FakeAuthenticator:
    """Users by (username, password); `unavailable` makes every call fail as a dead service."""

    def __init__(self, users: dict[tuple[str, str], AuthenticatedUser]) -> None:
        self.users = users
        self.calls: list[str] = []
        self.unavailable = False
        self.crash: Exception | None = None

    async def authenticate(self, username: str, password: str) -> AuthenticatedUser:
        self.calls.append(username)
        if self.crash is not None:
            raise self.crash
        if self.unavailable:
            raise AuthenticatorUnavailableError("UNAVAILABLE", "connection refused")
        user = self.users.get((username, password))
        if user is None:
            raise CredentialsRefusedError("UNAUTHENTICATED")
        return user


class FakeIssuer:
    """Tokens that say whom they are for."""

    ttl_seconds = 900

    def issue(self, subject: str, roles: list[str]) -> str:
        return f"token:{subject}:{','.join(roles)}"


@dataclass
class FakeThrottle:
    """Records the steps; `closed_for` > 0 refuses begin()."""

    closed_for: int = 0
    steps: list[str] = field(default_factory=list)
    policy: Policy = field(default_factory=lambda: Policy(3, 900, 1, 300))
    failures: int = 0

    async def begin(self, username: str, address: str) -> Admission:
        self.steps.append("begin")
        if self.closed_for:
            return Admission(False, self.closed_for, "account")
        return Admission(True)

    async def failed(self, username: str, address: str) -> Failure:
        self.steps.append("failed")
        self.failures += 1
        return Failure(self.failures, max(0, self.policy.free - self.failures), self.policy)

    async def succeeded(self, username: str, address: str) -> None:
        self.steps.append("succeeded")

    async def unjudged(self, username: str, address: str) -> None:
        self.steps.append("unjudged")
