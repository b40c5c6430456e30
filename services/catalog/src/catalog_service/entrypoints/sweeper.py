"""ReservationSweeper: the background loop that releases expired reservations every interval
(an entrypoint like a consumer: it drives Reservations.release_expired, holds no rule itself)."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Counter
from shop_common.logging import get_logger
from shop_common.observability import untraced

from catalog_service.service_layer.reservations import Reservations

log = get_logger(__name__)

RESERVATIONS_EXPIRED = Counter(
    "catalog_reservations_expired_total", "RESERVED stock released because it expired."
)


class ReservationSweeper:
    """Every `interval` seconds, releases reservations past their expiry (several instances may
    run: each release is a conditional status change, so a reservation is released once)."""

    def __init__(self, reservations: Reservations, *, interval: float) -> None:
        self._reservations = reservations
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """Release every expired reservation now, batch by batch; returns how many."""
        total = 0
        while released := await self._reservations.release_expired():
            total += released
        RESERVATIONS_EXPIRED.inc(total)
        return total

    async def start(self) -> None:
        """Run the loop in the background."""
        self._task = asyncio.create_task(self._run(), name="reservation-sweeper")

    async def stop(self) -> None:
        """Stop the loop (a sweep in progress is cancelled; its transaction rolls back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        with untraced():  # a sweep every interval starts no trace (as the order service's)
            while True:
                await asyncio.sleep(self._interval)
                try:
                    await self.sweep()
                except Exception as error:  # database down: try again next interval
                    log.warning("reservation_sweep_failed", error=repr(error))
