"""UserLookup: the UserDirectory port on the user service (gRPC) behind cache, breaker, retry
and deadline.

The caller's own bearer token is forwarded to GetUser (the user service lets a user read
itself and an admin read anyone), so the order service holds no credentials of its own and
the user service's per-caller rate limit applies to the real caller. The record is cached
(`user:{id}`; a NOT_FOUND answer is cached negatively for a short time); a cached user
lets an order through even while the user service is down and the breaker is open.

Refresh-ahead (USER_CACHE_REFRESH_AHEAD, shop_common.cache.RefreshAhead): a cached user read in
the last part of its TTL (after USER_CACHE_REFRESH_AFTER of it) is reloaded in the background
with that request's token, the cached record answering meanwhile; a hot user therefore never
waits for the user service, a cold one simply expires. A background reload that fails (user
service down, breaker open) is counted and leaves the cached record in place.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc
from shop_common.cache import RefreshAhead
from shop_common.clients.user import UserClient, UserRecord
from shop_common.logging import get_logger
from shop_common.resilience import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    Deadline,
    RetryPolicy,
    resilient_call,
)

from order_service.service_layer.users import (
    UnknownUserError,
    UserAccessDeniedError,
    UserServiceUnavailableError,
)
from order_service.settings import Settings

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
        refresh_ahead: RefreshAhead | None = None,
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
        self._ahead = refresh_ahead

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        client: UserClient,
        cache: UserCache,
        refresh_ahead: RefreshAhead | None = None,
    ) -> UserLookup:
        """The lookup with its breaker, retry and deadline from settings."""
        breaker = CircuitBreaker(
            "user-service",
            BreakerConfig(
                consecutive_failures=settings.user_breaker_failures,
                recovery_timeout=settings.user_breaker_recovery_seconds,
            ),
        )
        return cls(
            client,
            cache,
            breaker,
            retry=RetryPolicy(max_attempts=settings.user_lookup_attempts, max_backoff=0.2),
            deadline_seconds=settings.user_lookup_deadline_seconds,
            attempt_timeout_seconds=settings.user_lookup_attempt_timeout_seconds,
            ttl_seconds=settings.user_cache_ttl_seconds,
            negative_ttl_seconds=settings.user_cache_negative_ttl_seconds,
            default_retry_after=settings.user_unavailable_retry_after_seconds,
            refresh_ahead=refresh_ahead,
        )

    async def require(
        self, user_id: int, *, token: str, request_id: str | None = None
    ) -> UserRecord:
        """The user, from the cache or the user service; raises the errors above."""

        async def load() -> dict[str, Any] | None:
            return await self._fetch(user_id, token, request_id)

        key = user_cache_key(user_id)
        if self._ahead is not None:  # same TTLs: the cache's negative TTL is the lookup's
            cached = await self._ahead.get(key, load)
        else:
            cached = await self._cache.get_or_load(
                key, load, ttl=self._ttl, negative_ttl=self._negative_ttl
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
            log.warning("user_lookup_failed", user_id=user_id, code=code.name)
            raise UserServiceUnavailableError(
                f"the user service answered {code.name}", self._default_retry_after
            ) from exc
        except TimeoutError as exc:
            raise UserServiceUnavailableError(
                "the user service did not answer in time", self._default_retry_after
            ) from exc
        return record.to_dict()
