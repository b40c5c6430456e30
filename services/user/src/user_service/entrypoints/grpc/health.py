"""grpc.health.v1 status kept in step with the database (polled through a `ping` the composition
root passes in)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from grpc_health.v1 import health, health_pb2
from shop_common.logging import get_logger
from shop_common.observability import untraced

SERVICE_NAME = "shop.user.v1.UserService"
log = get_logger(__name__)


class DatabaseHealth:
    """Sets SERVING / NOT_SERVING for "" and the UserService from a periodic `SELECT 1`."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        ping: Callable[[], Awaitable[None]],
        *,
        interval: float,
        timeout: float,
    ) -> None:
        self.servicer = servicer
        self._ping = ping
        self._interval = interval
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self.serving: bool | None = None

    async def check_once(self) -> bool:
        """Probe the database once and publish the status; True when it answered."""
        try:
            # A probe every interval: it starts no trace (shop_common.observability).
            with untraced():
                async with asyncio.timeout(self._timeout):
                    await self._ping()
            ok = True
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            ok = False
            if self.serving is not False:
                log.warning("database_unreachable", error=type(exc).__name__)
        if ok != self.serving:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", SERVICE_NAME):
                await self.servicer.set(name, status)
            self.serving = ok
        return ok

    async def _loop(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        """Publish the first status, then keep it fresh in the background."""
        await self.check_once()
        self._task = asyncio.create_task(self._loop(), name="db-health")

    async def stop(self) -> None:
        """Stop probing and report NOT_SERVING (shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.servicer.enter_graceful_shutdown()
