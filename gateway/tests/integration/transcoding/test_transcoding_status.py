"""The gRPC → HTTP mapping and what trips the user-service breaker (pure logic)."""

from __future__ import annotations

import grpc
import pytest
from gateway.entrypoints.transcoding import http_status_of, problem_from, user_service_breaker
from shop_common.resilience import CircuitOpenError, CircuitState


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.OUT_OF_RANGE, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.INTERNAL, 502),
        (grpc.StatusCode.UNKNOWN, 502),
        (grpc.StatusCode.DATA_LOSS, 502),
        (grpc.StatusCode.CANCELLED, 502),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ],
)
def test_grpc_status_to_http_status(code: grpc.StatusCode, status: int) -> None:
    assert http_status_of(code) == status
    problem = problem_from(rpc_error(code, "x"))
    assert problem is not None
    assert (problem.status, problem.extensions["grpc_status"]) == (status, code.name)


def test_client_errors_keep_the_service_message_upstream_faults_never_do() -> None:
    taken = problem_from(rpc_error(grpc.StatusCode.ALREADY_EXISTS, "email already registered"))
    assert taken is not None and taken.detail == "email already registered"
    leaked = problem_from(rpc_error(grpc.StatusCode.INTERNAL, 'relation "users" SELECT * FROM'))
    assert leaked is not None and "SELECT" not in (leaked.detail or "")
    assert leaked.detail == "the user service failed"


def test_retry_after_on_429_503_and_the_open_breaker_rounds_up() -> None:
    for code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
        problem = problem_from(rpc_error(code))
        assert problem is not None and problem.headers["Retry-After"] == "1"
    opened = problem_from(CircuitOpenError("grpc:user", 2.2))
    assert opened is not None
    assert (opened.status, opened.headers["Retry-After"]) == (503, "3")
    assert problem_from(ValueError("not a call outcome")) is None


async def test_only_unavailability_and_timeouts_trip_the_breaker() -> None:
    """RESOURCE_EXHAUSTED is one caller's limit: it must not open the breaker for everyone."""
    breaker = user_service_breaker("grpc:user:status-test")

    async def fail(code: grpc.StatusCode) -> None:
        raise rpc_error(code)

    for code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.NOT_FOUND) * 10:
        with pytest.raises(grpc.aio.AioRpcError):
            await breaker.call(fail, code)
    assert breaker.state is CircuitState.CLOSED
    for _ in range(breaker.config.consecutive_failures or 5):
        with pytest.raises(grpc.aio.AioRpcError):
            await breaker.call(fail, grpc.StatusCode.UNAVAILABLE)
    assert breaker.state is CircuitState.OPEN
