"""gRPC outcomes → HTTP problems, and the breaker that guards the user service."""

from __future__ import annotations

import asyncio
import math

import grpc
from shop_common.resilience import BreakerConfig, CircuitBreaker, CircuitOpenError
from shop_common.web import ProblemError

# Client-caused statuses carry the service's own message (its domain errors are client-safe).
_CLIENT_ERRORS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}
# Upstream failures get a fixed message: never an internal detail of another service.
_UPSTREAM_ERRORS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.UNAVAILABLE: (503, "the user service is unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "the user service did not answer in time"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "the user service does not implement this call"),
}
# Seconds a client should wait after a 503/429 not caused by an open breaker.
UNAVAILABLE_RETRY_AFTER = 1
_RETRYABLE_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def http_status_of(code: grpc.StatusCode) -> int:
    """The HTTP status a gRPC status code is answered with (502 for upstream faults)."""
    if code in _CLIENT_ERRORS:
        return _CLIENT_ERRORS[code]
    return _UPSTREAM_ERRORS.get(code, (502, ""))[0]


def problem_from_rpc(exc: grpc.aio.AioRpcError) -> ProblemError:
    """The problem+json error for a failed call (status, safe detail, grpc_status, headers)."""
    code = exc.code()
    status = http_status_of(code)
    headers: dict[str, str] = {}
    if code in _CLIENT_ERRORS:
        detail = exc.details() or None
    else:
        detail = _UPSTREAM_ERRORS.get(code, (502, "the user service failed"))[1]
    if status in (429, 503):
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    if status == 401:
        reason = (detail or "invalid token").replace('"', "'")
        headers["WWW-Authenticate"] = (
            f'Bearer realm="shop", error="invalid_token", error_description="{reason}"'
        )
    return ProblemError(
        status, detail=detail, headers=headers, extensions={"grpc_status": code.name}
    )


def problem_from_open_circuit(exc: CircuitOpenError) -> ProblemError:
    """503 with Retry-After (whole seconds until the breaker's next trial, at least 1)."""
    return ProblemError(
        503,
        detail="the user service is failing; calls are suspended",
        headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        extensions={"breaker": exc.name},
    )


def problem_from_timeout() -> ProblemError:
    """504 for a deadline the gateway enforced itself (e.g. attaching a subscription)."""
    return ProblemError(
        504,
        detail="the user service did not answer in time",
        extensions={"grpc_status": "DEADLINE_EXCEEDED"},
    )


def problem_from(exc: BaseException) -> ProblemError | None:
    """The problem for an exception raised by a guarded call; None when it is not a call outcome."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, CircuitOpenError):
        return problem_from_open_circuit(exc)
    if isinstance(exc, grpc.aio.AioRpcError):
        return problem_from_rpc(exc)
    if isinstance(exc, TimeoutError):
        return problem_from_timeout()
    return None


def is_user_service_failure(exc: BaseException) -> bool:
    """What trips the breaker: unavailable or too slow, never a caller's own error.

    RESOURCE_EXHAUSTED is the user service's per-caller limit: one noisy caller must not
    open the breaker for everyone, so unlike shop_common's default it does not count.
    """
    if isinstance(exc, asyncio.CancelledError):
        return False
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in _RETRYABLE_FAILURES
    return isinstance(exc, TimeoutError | ConnectionError)


def user_service_breaker(
    name: str = "grpc:user", config: BreakerConfig | None = None
) -> CircuitBreaker:
    """A breaker for the user service that counts only unavailability and timeouts."""
    return CircuitBreaker(name, config, is_failure=is_user_service_failure)
