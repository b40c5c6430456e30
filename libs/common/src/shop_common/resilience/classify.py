"""Which outcomes count as a dependency failure for a circuit breaker."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import httpx

_FAILING_GRPC_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def default_is_failure(exc: BaseException) -> bool:
    """True when exc signals an unhealthy dependency (5xx, unavailable, timeout, connection)."""
    if isinstance(exc, asyncio.CancelledError):
        return False
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code in _FAILING_GRPC_CODES
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status >= 500
    if isinstance(exc, httpx.TransportError | aiohttp.ClientConnectionError):
        return True
    return isinstance(exc, TimeoutError | ConnectionError | OSError)
