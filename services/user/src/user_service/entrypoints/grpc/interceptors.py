"""The server interceptor: server span, request id, access log and RED metrics, auth, rate limit
and error mapping.

One interceptor runs the steps inline (in that order) instead of a chain: each grpc.aio
interceptor costs a wrapped handler per call, which the GetUser benchmark showed. Every call,
streams included (a stream's duration is its whole life), is recorded in shop_common.metrics'
RED family as protocol="grpc", operation=the full method, code=the status name.

With tracing on, every call but a health check gets its server span here
(shop_common.observability.rpc, continuing the caller's `traceparent`), first, so the access log
line and everything the servicer does are inside it: the grpc.aio server instrumentation would
add an interceptor of its own, which the GetUser benchmark measured at ~5x the span's cost.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import structlog
from shop_common.auth import AuthError, Principal, TokenVerifier, parse_bearer
from shop_common.logging import get_logger
from shop_common.metrics import RedRecorder
from shop_common.observability import TRACE_HEADERS, RpcServerSpans, span_exception

from user_service.domain.errors import (
    AlreadyExists,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from user_service.entrypoints.grpc.context import current_principal, current_request_id
from user_service.entrypoints.grpc.handlers import wrap_handler

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
HEALTH_PREFIX = "/grpc.health.v1.Health/"
_STATUS_OF: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def _read_metadata(context: Context) -> tuple[str | None, str | None, dict[str, str]]:
    """The x-request-id and authorization values and the W3C trace context (traceparent,
    tracestate), read in one pass over the metadata."""
    request_id = authorization = None
    trace_context: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value if isinstance(value, str) else value.decode()
        elif key == "x-request-id":
            request_id = value if isinstance(value, str) else value.decode()
        elif key in TRACE_HEADERS:
            trace_context[key] = value if isinstance(value, str) else value.decode()
    return request_id, authorization, trace_context


class RateLimiter:
    """A token bucket per caller key."""

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


async def _map_errors(
    call: Call, method: str, context: Context, unavailable: tuple[type[BaseException], ...]
) -> None:
    """Domain errors → their status, `unavailable` errors (the database's, from the composition
    root) → UNAVAILABLE; nothing internal leaks.

    The deadline needs no timer of ours: grpc.aio cancels the handler's task when the call's
    deadline passes (measured: a handler sleeping 5 s under a 0.5 s deadline is cancelled at
    0.5 s), so the work stops and the client gets DEADLINE_EXCEEDED.
    """
    try:
        await call()
    except grpc.aio.AbortError:
        raise
    except DomainError as exc:
        await context.abort(_STATUS_OF.get(type(exc), grpc.StatusCode.INTERNAL), str(exc))
    except unavailable as exc:
        log.warning("database_unavailable", method=method, error=type(exc).__name__)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
    except Exception as exc:
        span_exception(exc)
        log.exception("unhandled_error", method=method)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")


class CallPipeline(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Server span → request id → access log and metrics → auth → rate limit → error mapping,
    around every call (`spans` None: tracing off, no span)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        limiter: RateLimiter,
        unavailable: tuple[type[BaseException], ...] = (OSError,),
        spans: RpcServerSpans | None = None,
    ) -> None:
        # A CachingTokenVerifier in the server: RS256 once per token, not once per call.
        self.verifier = verifier
        self.limiter = limiter
        self.unavailable = unavailable
        self.spans = spans
        self.in_flight = 0
        self.calls_total = 0
        self._red = RedRecorder("grpc")
        # Wrapped handlers are built once per method, not once per call.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return handler
            wrapped = self._wrapped[method] = wrap_handler(handler, method, self.around)
        return wrapped

    async def around(self, call: Call, method: str, context: Context) -> None:
        """Run one call through every step."""
        given_id, authorization, trace_context = _read_metadata(context)
        span = (
            self.spans.start(method, trace_context)
            if self.spans is not None and not method.startswith(HEALTH_PREFIX)
            else None
        )
        request_id = given_id[:128] if given_id else os.urandom(16).hex()
        current_request_id.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = "OK"
        principal: Principal | None = None
        self.in_flight += 1
        self.calls_total += 1
        red_in_flight = self._red.in_flight
        red_in_flight.inc()
        try:
            if not method.startswith(PUBLIC_METHOD_PREFIXES):
                try:
                    principal = self.verifier.verify(parse_bearer(authorization))
                except AuthError as exc:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.reason)
                current_principal.set(principal)
            if not method.startswith(HEALTH_PREFIX):
                caller = (
                    f"user:{principal.subject}"
                    if principal
                    else f"peer:{context.peer().rsplit(':', 1)[0]}"
                )
                if not self.limiter.allow(caller):
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded; retry later"
                    )
            await _map_errors(call, method, context, self.unavailable)
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            status = (
                "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
            )
            raise
        except BaseException:
            code = context.code()
            status = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
            raise
        finally:
            self.in_flight -= 1
            red_in_flight.dec()
            seconds = time.perf_counter() - started
            self._red.record(method, status, seconds)
            log.info(
                "rpc",
                method=method,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                caller=principal.subject if principal else None,
            )
            if span is not None:
                span.end(status, context.details() if status != "OK" else None)


def call_pipeline(
    verifier: TokenVerifier,
    *,
    rate: float,
    burst: int,
    unavailable: tuple[type[BaseException], ...] = (OSError,),
    spans: RpcServerSpans | None = None,
) -> CallPipeline:
    """The interceptor of the user service (pass a CachingTokenVerifier; `spans` from
    shop_common.observability.rpc_server_spans when tracing is on)."""
    return CallPipeline(verifier, RateLimiter(rate, burst), unavailable, spans)
