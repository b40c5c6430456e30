"""Server interceptors, outermost first: request id, access log, auth, rate limit, errors."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import structlog
from shop_common.auth import AuthError, Principal, TokenVerifier, parse_bearer
from shop_common.logging import get_logger
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from user_service.domain.errors import (
    AlreadyExists,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from user_service.grpc.context import current_principal, current_request_id
from user_service.grpc.handlers import wrap_handler

log = get_logger("user_service.access")
Call = Callable[[], Awaitable[None]]
Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type information)

# Methods callable without a token: login itself, health checks and reflection.
PUBLIC_METHOD_PREFIXES = (
    "/shop.user.v1.UserService/Authenticate",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
_STATUS_OF: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def _metadata(context: Context, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return item.value if isinstance(item.value, str) else item.value.decode()
    return None


class _Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def around(self, call: Call, method: str, context: Context) -> None:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap_handler(handler, handler_call_details.method, self.around)


class RequestIdInterceptor(_Interceptor):
    """Takes x-request-id from the caller (or makes one) and binds it for logs and events."""

    async def around(self, call: Call, method: str, context: Context) -> None:
        request_id = _metadata(context, "x-request-id") or uuid.uuid4().hex
        current_request_id.set(request_id[:128])
        structlog.contextvars.bind_contextvars(request_id=request_id[:128])
        await call()


class AccessLogInterceptor(_Interceptor):
    """One JSON line per call: method, status, duration_ms, request id (from contextvars)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.calls_total = 0

    async def around(self, call: Call, method: str, context: Context) -> None:
        started = time.perf_counter()
        status = "OK"
        self.in_flight += 1
        self.calls_total += 1
        try:
            await call()
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        except BaseException:
            code = context.code()
            status = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
            raise
        finally:
            self.in_flight -= 1
            principal = current_principal.get()
            log.info(
                "rpc",
                method=method,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                caller=principal.subject if principal else None,
            )


class AuthInterceptor(_Interceptor):
    """Verifies the bearer token (cached briefly by token string) and sets the principal."""

    def __init__(
        self, verifier: TokenVerifier, cache_seconds: float, max_entries: int = 10_000
    ) -> None:
        self._verifier = verifier
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._cache: dict[str, tuple[Principal, float]] = {}

    def principal(self, token: str) -> Principal:
        """The verified principal of token; AuthError when it does not verify."""
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = self._verifier.verify(token)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        # Never cache beyond the token's own expiry.
        expires = min(now + self._cache_seconds, float(principal.claims.get("exp", now)))
        self._cache[token] = (principal, expires)
        return principal

    async def around(self, call: Call, method: str, context: Context) -> None:
        if method.startswith(PUBLIC_METHOD_PREFIXES):
            await call()
            return
        try:
            principal = self.principal(parse_bearer(_metadata(context, "authorization")))
        except AuthError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.reason)
        current_principal.set(principal)
        await call()


class RateLimitInterceptor(_Interceptor):
    """A token bucket per caller (token subject, else peer address): RESOURCE_EXHAUSTED."""

    def __init__(self, rate: float, burst: int, max_callers: int = 10_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, caller: str) -> bool:
        """Take one token from caller's bucket; False when it is empty."""
        now = time.monotonic()
        tokens, last = self._buckets.get(caller, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if len(self._buckets) >= self._max_callers and caller not in self._buckets:
            self._buckets.clear()
        if tokens < 1:
            self._buckets[caller] = (tokens, now)
            return False
        self._buckets[caller] = (tokens - 1, now)
        return True

    async def around(self, call: Call, method: str, context: Context) -> None:
        if method.startswith("/grpc.health.v1.Health/"):
            await call()
            return
        principal = current_principal.get()
        caller = (
            f"user:{principal.subject}" if principal else f"peer:{context.peer().rsplit(':', 1)[0]}"
        )
        if not self.allow(caller):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded; retry later"
            )
        await call()


class ErrorInterceptor(_Interceptor):
    """Domain errors → their status; the deadline bounds the work; nothing internal leaks."""

    async def around(self, call: Call, method: str, context: Context) -> None:
        remaining = context.time_remaining()
        try:
            async with asyncio.timeout(remaining):
                await call()
        except grpc.aio.AbortError:
            raise
        except DomainError as exc:
            await context.abort(_STATUS_OF.get(type(exc), grpc.StatusCode.INTERNAL), str(exc))
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        except (OperationalError, InterfaceError, PoolTimeoutError, OSError) as exc:
            log.warning("database unavailable", method=method, error=type(exc).__name__)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
        except DBAPIError:
            log.exception("database error", method=method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        except Exception:
            log.exception("unhandled error", method=method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def server_interceptors(
    access_log: AccessLogInterceptor,
    verifier: TokenVerifier,
    *,
    token_cache_seconds: float,
    rate: float,
    burst: int,
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptor chain, outermost first."""
    return [
        RequestIdInterceptor(),
        access_log,
        AuthInterceptor(verifier, token_cache_seconds),
        RateLimitInterceptor(rate, burst),
        ErrorInterceptor(),
    ]
