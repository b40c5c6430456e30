"""SagaTimeoutSweeper: the background loop that runs the saga-timeout use case every interval
(an entrypoint like a consumer: it drives OrderService.expire_pending, holds no rule itself)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from prometheus_client import Counter
from shop_common.logging import get_logger
from shop_common.observability import untraced

from order_service.service_layer.orders import OrderService

log = get_logger(__name__)

ORDERS_EXPIRED = Counter(
    "order_saga_timeouts_total", "PENDING orders failed and compensated by the saga timeout."
)


class SagaTimeoutSweeper:
    """Every `interval` seconds, expires PENDING orders older than `timeout` (several may run:
    candidates are claimed FOR UPDATE SKIP LOCKED)."""

    def __init__(self, service: OrderService, *, timeout: float, interval: float) -> None:
        self._service = service
        self._timeout = timedelta(seconds=timeout)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """Expire every overdue order now, batch by batch; returns how many."""
        total = 0
        while expired := await self._service.expire_pending(self._timeout):
            total += expired
        ORDERS_EXPIRED.inc(total)
        if total:
            log.info("saga_timeout_orders_failed", count=total)
        return total

    async def start(self) -> None:
        """Run the loop in the background."""
        self._task = asyncio.create_task(self._run(), name="saga-timeout-sweeper")

    async def stop(self) -> None:
        """Stop the loop (a sweep in progress is cancelled; its transaction rolls back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        with untraced():  # a sweep every interval starts no trace; its events are published
            await self._sweep_forever()  # untraced too (shop_common.messaging.relay)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception as error:  # database down: try again next interval
                log.warning("saga_sweep_failed", error=repr(error))
