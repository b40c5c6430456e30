"""Liveness and readiness endpoints: /health always answers, /ready runs the dependency checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from shop_common.logging import get_logger
from shop_common.observability.propagation import untraced
from shop_common.web.problems import problem_response, problem_responses

ReadinessCheck = Callable[[], Awaitable[bool]]
CheckResult = Literal["ok", "failing", "timeout", "error"]
_log = get_logger(__name__)


class HealthStatus(BaseModel):
    """Liveness: the process runs and its event loop answers."""

    status: Literal["ok"] = "ok"


class ReadinessStatus(BaseModel):
    """Readiness: every dependency check passed."""

    status: Literal["ready"] = "ready"
    checks: dict[str, CheckResult]


async def _run_check(name: str, check: ReadinessCheck, per_check_seconds: float) -> CheckResult:
    try:
        async with asyncio.timeout(per_check_seconds):
            return "ok" if await check() else "failing"
    except TimeoutError:
        _log.warning("readiness_check_timeout", check=name, seconds=per_check_seconds)
        return "timeout"
    except Exception as exc:
        _log.warning("readiness_check_error", check=name, error=repr(exc))
        return "error"


async def run_checks(
    checks: Mapping[str, ReadinessCheck], per_check_seconds: float = 2.0
) -> dict[str, CheckResult]:
    """Run every check concurrently, each bounded by per_check_seconds; a raise counts as "error".

    Untraced: a probe's queries and pings would each be a root trace (shop_common.observability).
    """
    names = list(checks)
    with untraced():
        results = await asyncio.gather(
            *(_run_check(n, checks[n], per_check_seconds) for n in names)
        )
    return dict(zip(names, results, strict=True))


def health_router(
    checks: Mapping[str, ReadinessCheck] | None = None, *, timeout: float = 2.0
) -> APIRouter:
    """GET /health (200 while the process runs) and GET /ready (200, or 503 naming failing checks)."""
    router = APIRouter(tags=["health"])
    registered = dict(checks or {})

    @router.get("/health", response_model=HealthStatus)
    async def health() -> HealthStatus:
        return HealthStatus()

    @router.get("/ready", response_model=ReadinessStatus, responses=problem_responses(503))
    async def ready(request: Request) -> ReadinessStatus | Response:
        results = await run_checks(registered, timeout)
        failing = sorted(name for name, result in results.items() if result != "ok")
        if failing:
            return problem_response(
                request,
                503,
                detail="not ready: " + ", ".join(failing),
                extensions={"checks": results},
            )
        return ReadinessStatus(checks=results)

    return router
