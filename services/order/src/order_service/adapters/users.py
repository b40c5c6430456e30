"""Who is ordering: the caller's user record through cache → breaker → retry → gRPC deadline.

The caller's own bearer token is forwarded to GetUser (the user service lets a user read
itself and an admin read anyone), so the order service holds no credentials of its own and
the user service's per-caller rate limit applies to the real caller. The record is cached
(`user:{id}`; a NOT_FOUND answer is cached negatively for a short time); a cached user
lets an order through even while the user service is down and the breaker is open.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc
from shop_common.clients.user import UserClient, UserRecord
from shop_common.logging import get_logger
from shop_common.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    RetryPolicy,
    resilient_call,
)

log = get_logger(__name__)


class UserCache(Protocol):
    """What the lookup needs of shop_common.cache.MultiLevelCache."""

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        *,
        ttl: float | None = None,
        negative_ttl: float | None = None,
    ) -> Any: ...

    async def delete(self, *keys: str) -> Any: ...


class UnknownUserError(Exception):
    """The caller's user does not exist (deleted after the token was issued)."""


class UserAccessDeniedError(Exception):
    """The user service refused the forwarded token (401/403 at the edge)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UserServiceUnavailableError(Exception):
    """The user service cannot answer now and the user is not cached (503 + Retry-After)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def user_cache_key(user_id: int) -> str:
    """The cache key of a user record."""
    return f"user:{user_id}"


_DENIED = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}


class UserLookup:
    """Resolves the calling user; evicts a user when the users exchange says it changed."""

    def __init__(
        self,
        client: UserClient,
        cache: UserCache,
        breaker: CircuitBreaker,
        *,
        retry: RetryPolicy,
        deadline_seconds: float,
        attempt_timeout_seconds: float,
        ttl_seconds: float,
        negative_ttl_seconds: float,
        default_retry_after: int,
    ) -> None:
        self._client = client
        self._cache = cache
        self._breaker = breaker
        self._retry = retry
        self._deadline_seconds = deadline_seconds
        self._attempt_timeout = attempt_timeout_seconds
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._default_retry_after = default_retry_after

    async def require(
        self, user_id: int, *, token: str, request_id: str | None = None
    ) -> UserRecord:
        """The user, from the cache or the user service; raises the errors above."""

        async def load() -> dict[str, Any] | None:
            return await self._fetch(user_id, token, request_id)

        cached = await self._cache.get_or_load(
            user_cache_key(user_id), load, ttl=self._ttl, negative_ttl=self._negative_ttl
        )
        if cached is None:
            raise UnknownUserError(str(user_id))
        return UserRecord.from_dict(cached)

    async def evict(self, user_id: int) -> None:
        """Drop the cached user (every instance's L1 through the cache's coherence channel)."""
        await self._cache.delete(user_cache_key(user_id))

    async def _fetch(
        self, user_id: int, token: str, request_id: str | None
    ) -> dict[str, Any] | None:
        get_user = functools.partial(
            self._client.get_user,
            user_id,
            token=token,
            request_id=request_id,
            timeout=self._attempt_timeout,
        )
        try:
            record = await resilient_call(
                get_user,
                breaker=self._breaker,
                retry=self._retry,
                timeout=self._attempt_timeout,
                deadline=Deadline.after(self._deadline_seconds),
            )
        except CircuitOpenError as exc:
            raise UserServiceUnavailableError(
                "the user service is unavailable (circuit open)", math.ceil(exc.retry_after) or 1
            ) from exc
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.NOT_FOUND:
                return None
            if code in _DENIED:
                raise UserAccessDeniedError(
                    _DENIED[code], "the user service refused the token"
                ) from exc
            log.warning("user lookup failed", user_id=user_id, code=code.name)
            raise UserServiceUnavailableError(
                f"the user service answered {code.name}", self._default_retry_after
            ) from exc
        except TimeoutError as exc:
            raise UserServiceUnavailableError(
                "the user service did not answer in time", self._default_retry_after
            ) from exc
        return record.to_dict()
