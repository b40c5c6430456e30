"""Stock reservations, the order saga's stock side: reserve all or nothing, confirm, release once.

- `reserve_for_order(envelope, order)` (order.created, once per event through the inbox):
  every line held or none, and stock.reserved (what the payment service charges travels with
  it) or stock.rejected (the short sku named) leaves with it. The repository does it in one
  atomic step (adapters/reserve_sql.py), so concurrent reservations never drive stock negative.
  `reserve(order_id, lines)` is the same without an event (direct use). A second reservation
  for the same order returns the first answer (idempotent).
- `confirm(order_id)` (order.paid): the reservation no longer expires.
- `release(order_id, reason, cause=...)` (order.payment_failed, order.cancelled — after PAID too:
  the stock comes back): the status change RESERVED|CONFIRMED → RELEASED is conditional, so the
  stock comes back once however many times it is called, and stock.released leaves with it.
- `release_expired()` (the sweeper): releases RESERVED reservations past their expiry with
  reason `expired`. A confirmed reservation (the order paid) never expires; the order service
  moves a still-PENDING order whose stock was released to REJECTED and refunds a charge that
  lands later, so such an order never becomes PAID. RESERVATION_TTL_SECONDS is set well above
  the order service's SAGA_TIMEOUT_SECONDS, so an order normally ends (paid and confirmed, or
  failed and released) before its reservation can expire (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import BaseModel
from shop_common.logging import get_logger
from shop_common.messaging.context import context_headers
from shop_common.messaging.events import (
    EventEnvelope,
    OrderCreated,
    StockRejected,
    StockReleased,
    StockReserved,
    new_event,
)
from shop_common.messaging.events import StockLine as StockLinePayload

from catalog_service.domain.stock import (
    Reservation,
    ReservationStatus,
    ReserveOutcome,
    StockLine,
    reservation_lines,
)
from catalog_service.service_layer.ports import (
    InboxClaim,
    ReserveAttempt,
    ReserveRequest,
    UnitOfWorkFactory,
)

log = get_logger(__name__)
Clock = Callable[[], datetime]
# The inbox key of the saga's order events (the queue that carries them).
INBOX_CONSUMER = "catalog.order-events"


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def _event(
    event_type: str, payload: BaseModel, order_id: UUID, cause: EventEnvelope | None
) -> EventEnvelope:
    return new_event(
        event_type,
        payload,
        correlation_id=cause.correlation_id if cause and cause.correlation_id else str(order_id),
        causation_id=str(cause.event_id) if cause else None,
    )


def _log_outcome(request: ReserveRequest, attempt: ReserveAttempt) -> None:
    if attempt.status is ReservationStatus.RESERVED:
        log.info("stock_reserved", order_id=str(request.order_id), lines=len(request.lines))
    elif attempt.status is ReservationStatus.REJECTED:
        log.info("stock_rejected", order_id=str(request.order_id), sku=attempt.short)


def _payload_lines(lines: Iterable[StockLine]) -> list[StockLinePayload]:
    return [StockLinePayload(sku=x.sku, quantity=x.quantity) for x in lines]


class Reservations:
    """The stock side of the order saga (see the module docstring)."""

    def __init__(self, uow: UnitOfWorkFactory, ttl_seconds: float, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    async def reserve(self, order_id: UUID, lines: Iterable[StockLine]) -> ReserveOutcome:
        """Hold every line for the order, or none (no event; see the module docstring)."""
        request = ReserveRequest(order_id, tuple(reservation_lines(lines)), self._expiry())
        outcome = await self._reserve(request)
        assert outcome is not None  # without a claim there is no duplicate
        return outcome

    def prepare(self, envelope: EventEnvelope, order: OrderCreated) -> ReserveRequest:
        """order.created → the reservation it asks for, with its two possible events. Their
        outbox rows carry the current trace context and request id: call it in the context of
        the message it answers. InvalidQuantityError for lines no reservation can hold."""
        wanted = reservation_lines(StockLine(x.sku, x.quantity) for x in order.items)
        reserved = StockReserved(
            order_id=order.order_id,
            user_id=order.user_id,
            items=_payload_lines(wanted),
            total=order.total,
            currency=order.currency,
        )
        # reason and sku are filled in by the repository with the sku that was short.
        rejected = StockRejected(order_id=order.order_id, reason="not enough stock")
        return ReserveRequest(
            order.order_id,
            tuple(wanted),
            self._expiry(),
            InboxClaim(envelope.event_id, INBOX_CONSUMER),
            _event("stock.reserved", reserved, order.order_id, envelope),
            _event("stock.rejected", rejected, order.order_id, envelope),
            context_headers(),
        )

    async def reserve_for_order(
        self, envelope: EventEnvelope, order: OrderCreated
    ) -> ReserveOutcome | None:
        """order.created: hold the order's lines once, and tell the saga; None for a
        redelivered event (nothing done)."""
        return await self._reserve(self.prepare(envelope, order))

    async def settle(self, requests: Sequence[ReserveRequest], confirms: Sequence[UUID]) -> int:
        """Many order.created and order.paid at once (the batch consumer), in one transaction:
        each reservation as reserve_for_order makes it, in the order given, then the
        confirmations; how many reservations were confirmed."""
        attempts, confirmed = await self._uow().reservations.settle_batch(requests, confirms)
        for request, attempt in zip(requests, attempts, strict=True):
            _log_outcome(request, attempt)
        return confirmed

    def _expiry(self) -> datetime:
        return self._clock() + self._ttl

    async def _reserve(self, request: ReserveRequest) -> ReserveOutcome | None:
        attempt = await self._uow().reservations.reserve(request)
        _log_outcome(request, attempt)
        order_id = request.order_id
        if not attempt.claimed:
            return None
        if attempt.status is None:  # the order had a record already: its answer stands
            earlier = await self._uow().reservations.get(order_id)
            assert earlier is not None, "a reservation record is never deleted"
            return ReserveOutcome(earlier, created=False)
        if attempt.status is ReservationStatus.RESERVED:
            lines = request.lines
            held = Reservation(order_id, ReservationStatus.RESERVED, lines, request.expires_at)
            return ReserveOutcome(held, created=True)
        reason = f"not enough stock of {attempt.short}"
        refused = Reservation(order_id, ReservationStatus.REJECTED, (), None, reason)
        return ReserveOutcome(refused, created=True)

    async def release(
        self,
        order_id: UUID,
        *,
        expired_only: bool = False,
        reason: str = "released",
        cause: EventEnvelope | None = None,
    ) -> bool:
        """Give the order's stock back and publish stock.released; True only for the call that
        did it. expired_only: only if it is still RESERVED and past its expiry (the sweeper's
        race with a confirm). cause: the event this answers (claimed once in the inbox)."""
        now = self._clock()
        async with self._uow() as uow:
            if cause is not None and not await uow.claim(
                InboxClaim(cause.event_id, INBOX_CONSUMER)
            ):
                return False
            lines = await uow.reservations.release(
                order_id, now, expired_by=now if expired_only else None
            )
            if lines is not None:
                released = StockReleased(
                    order_id=order_id, reason=reason, items=_payload_lines(lines)
                )
                event = _event("stock.released", released, order_id, cause)
                await uow.emit(event, aggregate_id=str(order_id))
            await uow.commit()  # the claim stands either way: this event has been handled
        if lines is None:
            return False
        log.info("stock_released", order_id=str(order_id), lines=len(lines), reason=reason)
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
            if await self.release(order_id, expired_only=True, reason="expired"):
                released += 1
        if released:
            log.info("reservations_expired", released=released)
        return released
