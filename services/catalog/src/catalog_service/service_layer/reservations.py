"""Stock reservations for the order saga: reserve all or nothing, confirm, release exactly once.

- `reserve(order_id, lines)`: in one transaction, a RESERVED record for the order, then each
  line taken in sku order by a conditional decrement (`available >= quantity`), so concurrent
  reservations never drive stock negative and never deadlock. One line short → the transaction
  rolls back (nothing taken) and a REJECTED record answers every later call the same way.
  A second call for the same order returns the first answer (idempotent).
- `release(order_id)`: the status change RESERVED|CONFIRMED → RELEASED is conditional, so the
  stock comes back once however many times (or however concurrently) release is called.
- `confirm(order_id)`: the order was paid; the reservation no longer expires.
- `release_expired()`: releases RESERVED reservations past their expiry (the sweeper).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from shop_common.logging import get_logger

from catalog_service.domain.stock import (
    Reservation,
    ReservationStatus,
    ReserveOutcome,
    StockLine,
    reservation_lines,
)
from catalog_service.service_layer.ports import UnitOfWorkFactory

log = get_logger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class Reservations:
    """The stock side of the order saga (see the module docstring)."""

    def __init__(self, uow: UnitOfWorkFactory, ttl_seconds: float, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    async def reserve(self, order_id: UUID, lines: Iterable[StockLine]) -> ReserveOutcome:
        """Hold every line for the order, or none (see the module docstring)."""
        wanted = reservation_lines(lines)
        expires_at = self._clock() + self._ttl
        short: str | None = None
        async with self._uow() as uow:
            opened = await uow.reservations.open(order_id, expires_at)
            for line in wanted if opened else ():
                if not await uow.reservations.take(line):
                    short = line.sku
                    break
            if opened and short is None:
                await uow.reservations.add_lines(order_id, wanted)
                await uow.commit()
        # Read an earlier answer only after the transaction ended: never two connections at once.
        if not opened:
            return await self._earlier(order_id)
        if short is None:
            log.info("stock_reserved", order_id=str(order_id), lines=len(wanted))
            held = Reservation(order_id, ReservationStatus.RESERVED, tuple(wanted), expires_at)
            return ReserveOutcome(held, created=True)
        reason = f"not enough stock of {short}"
        if not await self._uow().reservations.reject(order_id, reason):
            return await self._earlier(order_id)  # a concurrent call for this order answered
        log.info("stock_rejected", order_id=str(order_id), sku=short)
        refused = Reservation(order_id, ReservationStatus.REJECTED, (), None, reason)
        return ReserveOutcome(refused, created=True)

    async def _earlier(self, order_id: UUID) -> ReserveOutcome:
        earlier = await self._uow().reservations.get(order_id)
        assert earlier is not None, "a reservation record is never deleted"
        return ReserveOutcome(earlier, created=False)

    async def release(self, order_id: UUID, *, expired_only: bool = False) -> bool:
        """Give the order's stock back; True only for the call that did it. expired_only: only
        if it is still RESERVED and past its expiry (the sweeper's race with a confirm)."""
        now = self._clock()
        async with self._uow() as uow:
            lines = await uow.reservations.release(
                order_id, now, expired_by=now if expired_only else None
            )
            if lines is None:
                return False
            await uow.commit()
        log.info("stock_released", order_id=str(order_id), lines=len(lines))
        return True

    async def confirm(self, order_id: UUID) -> bool:
        """The order was paid: keep its stock for good; True if it was RESERVED."""
        return await self._uow().reservations.confirm(order_id)

    async def get(self, order_id: UUID) -> Reservation | None:
        """The order's reservation."""
        return await self._uow().reservations.get(order_id)

    async def release_expired(self, limit: int = 100) -> int:
        """Release RESERVED reservations past their expiry; how many this call released."""
        released = 0
        for order_id in await self._uow().reservations.expired(self._clock(), limit):
            if await self.release(order_id, expired_only=True):
                released += 1
        if released:
            log.info("reservations_expired", released=released)
        return released
