"""The order use cases, each one unit of work: place/create (idempotent), read, list, cancel,
apply a payment result (once, through the inbox) and the saga timeout.

Each use case is written once, over the UnitOfWork port: where a one-statement fast path exists
(create, a payment result), the use case calls ONE repository method and the adapter decides
how it runs (adapters/orders.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from shop_common.messaging.events import EventEnvelope

from order_service.domain.listing import Cursor, OrderFilter
from order_service.domain.order import (
    SAGA_EXPIRED,
    SAGA_OUTCOME_OF,
    ConcurrentUpdateError,
    InvalidOrderError,
    Order,
    OrderLine,
    OrderStatus,
    WantedLine,
    priced_lines,
)
from order_service.service_layer import events
from order_service.service_layer.moves import INBOX_CONSUMER, SagaMoves
from order_service.service_layer.prices import PriceBook
from order_service.service_layer.unit_of_work import UnitOfWorkFactory
from order_service.service_layer.users import UserDirectory

SAGA_TIMEOUT_REASON = "payment timed out"

Clock = Callable[[], datetime]
# Told each saga outcome (domain.order.SAGA_OUTCOMES) once its transition has committed, never
# for a duplicate or replayed message (bootstrap wires the shop_saga_outcomes_total counter).
SagaOutcomes = Callable[[str], None]


def _ignore_outcome(_outcome: str) -> None:
    """The default: outcomes are not recorded (unit tests)."""


def utc_now() -> datetime:
    """The current time, timezone-aware (the default clock)."""
    return datetime.now(UTC)


class IdempotencyConflictError(Exception):
    """The Idempotency-Key was used before with a different request body."""


class OrderNotFoundError(Exception):
    """No such order visible to the caller."""


def request_hash(lines: list[OrderLine], currency: str) -> str:
    """Stable hash of a create request (same key + same body → same order).

    Only what the client sent (skus, quantities, currency): a retry after a price change is
    the same request, and gets the order priced the first time.
    """
    body = {"currency": currency, "items": [[x.sku, x.quantity] for x in lines]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class OrderService:
    """The use cases of the order aggregate; each opens its own unit of work."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], UUID] = uuid4,
        outcomes: SagaOutcomes = _ignore_outcome,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_id = new_id
        self._outcomes = outcomes
        # Saga results many at a time (the batch consumer); apply_payment_result takes the rest.
        self.moves = SagaMoves(uow, clock, outcomes)

    async def create(
        self,
        user_id: int,
        lines: list[OrderLine],
        currency: str,
        idempotency_key: str | None = None,
    ) -> tuple[Order, bool]:
        """Create the order (or return the one made with this key); True when newly created."""
        order = Order.place(self._new_id(), user_id, lines, currency, at=self._clock())
        digest = request_hash(lines, currency)
        async with self._uow() as uow:
            if await uow.orders.add(
                order,
                idempotency_key=idempotency_key,
                request_hash=digest,
                event=events.order_created(order),
            ):
                await uow.commit()
                return order, True
            assert idempotency_key is not None  # only the key's unique constraint conflicts
            earlier = await uow.orders.by_idempotency_key(user_id, idempotency_key)
        if earlier is None:  # orders are never deleted: only a concurrent change
            raise ConcurrentUpdateError(idempotency_key)
        if earlier[1] != digest:
            raise IdempotencyConflictError(idempotency_key)
        return earlier[0], False

    async def get(self, order_id: UUID, *, user_id: int, is_admin: bool) -> Order:
        """The order if the caller owns it or is admin; otherwise not found (no existence leak)."""
        async with self._uow() as uow:
            order = await uow.orders.get(order_id)
        if order is None or (order.user_id != user_id and not is_admin):
            raise OrderNotFoundError(str(order_id))
        return order

    async def list_page(
        self, order_filter: OrderFilter, after: Cursor | None, limit: int
    ) -> tuple[list[Order], Cursor | None]:
        """One page, newest first, and the cursor of the next page (None at the end)."""
        async with self._uow() as uow:
            orders = await uow.orders.list_page(order_filter, after, limit + 1)
        if len(orders) <= limit:
            return orders, None
        last = orders[limit - 1]
        return orders[:limit], Cursor(last.created_at, last.id)

    async def cancel(self, order_id: UUID, *, user_id: int, is_admin: bool) -> Order:
        """Cancel; a paid order goes to CANCELLED_REFUND_PENDING and the payment service refunds."""
        async with self._uow() as uow:
            order = await uow.orders.get(order_id, for_update=True)
            if order is None or (order.user_id != user_id and not is_admin):
                raise OrderNotFoundError(str(order_id))
            cancelled = order.cancel(at=self._clock())
            await uow.orders.save(order, cancelled)
            await uow.outbox.add(events.arrived(cancelled), aggregate_id=str(order.id))
            await uow.commit()
        if cancelled.status in SAGA_OUTCOME_OF:
            self._outcomes(SAGA_OUTCOME_OF[cancelled.status])
        return cancelled

    async def apply_payment_result(
        self,
        envelope: EventEnvelope,
        order_id: UUID,
        target: OrderStatus,
        reason: str | None = None,
    ) -> bool:
        """Apply a saga result once (inbox): payment.*, stock.rejected, stock.released; False
        when a duplicate or no longer applicable (e.g. a release for an order that has ended).

        A charge reported for an order that stopped waiting (timed out, cancelled or rejected
        while PENDING) is answered with a refund request (saga compensation): an order whose
        stock was released never becomes PAID.
        """
        async with self._uow() as uow:
            claim = await uow.orders.claim_and_move(
                order_id,
                target,
                event_id=envelope.event_id,
                consumer=INBOX_CONSUMER,
                at=self._clock(),
                reason=reason,
                event=events.status_changed(order_id, target, envelope),
            )
            if claim.order is None:
                await uow.commit()
                if claim.moved and target in SAGA_OUTCOME_OF:  # not on a duplicate
                    self._outcomes(SAGA_OUTCOME_OF[target])
                return claim.moved
            handled = target is OrderStatus.PAID and claim.order.owes_late_charge_refund
            if handled:
                refund = events.refund_requested(claim.order, envelope)
                await uow.outbox.add(refund, aggregate_id=str(order_id))
            await uow.commit()  # the inbox claim stays: this event is handled either way
        return handled

    async def expire_pending(self, older_than: timedelta, *, limit: int = 100) -> int:
        """Saga timeout: fail PENDING orders with no payment result and ask for compensation."""
        cutoff = self._clock() - older_than
        async with self._uow() as uow:
            ids = await uow.orders.pending_older_than(cutoff, limit)
            expired = 0
            for order_id in ids:
                order = await uow.orders.get(order_id)
                if order is None:
                    continue
                failed = order.transition(
                    OrderStatus.PAYMENT_FAILED, at=self._clock(), reason=SAGA_TIMEOUT_REASON
                )
                await uow.orders.save(order, failed)
                await uow.outbox.add(events.arrived(failed), aggregate_id=str(order.id))
                # Compensation: a charge that lands after the timeout must be refunded.
                await uow.outbox.add(events.refund_requested(failed), aggregate_id=str(order.id))
                expired += 1
            await uow.commit()
        for _ in range(expired):
            self._outcomes(SAGA_EXPIRED)
        return len(ids)


class PlaceOrder:
    """POST /orders: the caller must exist (user service, behind its cache), every line is
    priced by the shop (the catalog, behind its cache), then the order is created.

    The price rule (service_layer/prices.py): a price that changed after the client saw it is
    charged at the shop's current price at order time; the order keeps the unit price it was
    priced at.
    """

    def __init__(self, users: UserDirectory, prices: PriceBook, orders: OrderService) -> None:
        self._users = users
        self._prices = prices
        self._orders = orders

    async def __call__(
        self,
        user_id: int,
        wanted: list[WantedLine],
        currency: str | None = None,
        idempotency_key: str | None = None,
        *,
        token: str,
        request_id: str | None = None,
    ) -> tuple[Order, bool]:
        """The created (or replayed) order and whether it is new; the user errors first, then
        an unknown sku (UnknownSkuError) or an unreachable catalog; `currency`, when
        given, must be the one the shop prices in (else InvalidOrderError)."""
        await self._users.require(user_id, token=token, request_id=request_id)
        skus = list(dict.fromkeys(w.sku for w in wanted))
        if not skus:
            raise InvalidOrderError("an order needs at least one line")
        quotes = await asyncio.gather(*(self._prices.price_of(sku) for sku in skus))
        currencies = {quote.currency for quote in quotes}
        if len(currencies) != 1 or (currency is not None and currency not in currencies):
            raise InvalidOrderError(
                f"the shop prices these items in {', '.join(sorted(currencies))}, not {currency}"
            )
        lines = priced_lines(wanted, {quote.sku: quote.amount for quote in quotes})
        return await self._orders.create(user_id, lines, currencies.pop(), idempotency_key)
