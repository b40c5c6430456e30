"""Saga results applied many at a time: the batch consumer's path (entrypoints/consumers.py).

`prepare(envelope, order_id, target)` turns a result into a Move (its event's outbox row carries
the current trace context and request id: call it in the context of the message it answers);
`apply(moves)` makes, in one transaction, the moves the state machine allows (the repository's
`move_many`) and counts their saga outcomes. A move it does not make changed nothing: the caller
hands that message to OrderService.apply_payment_result (a duplicate, an order that stopped
waiting and is owed a refund).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from shop_common.messaging.context import context_headers
from shop_common.messaging.events import EventEnvelope

from order_service.domain.order import SAGA_OUTCOME_OF, OrderStatus
from order_service.service_layer import events
from order_service.service_layer.unit_of_work import Move, UnitOfWorkFactory

# The inbox key of the saga's results (the queue that carries them; OrderService's too).
INBOX_CONSUMER = "order.payment-results"


class SagaMoves:
    """Saga results in batches (see the module docstring)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Callable[[], datetime],
        outcomes: Callable[[str], None],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._outcomes = outcomes

    def prepare(
        self,
        envelope: EventEnvelope,
        order_id: UUID,
        target: OrderStatus,
        reason: str | None = None,
    ) -> Move:
        """The result as a move, with the event it emits and the current context's headers."""
        return Move(
            order_id,
            target,
            envelope.event_id,
            INBOX_CONSUMER,
            self._clock(),
            reason,
            events.status_changed(order_id, target, envelope),
            context_headers(),
        )

    async def apply(self, moves: Sequence[Move]) -> list[bool]:
        """Make the moves the state machine allows, in one transaction; True for those."""
        async with self._uow() as uow:
            moved = await uow.orders.move_many(moves)
        for move, done in zip(moves, moved, strict=True):
            if done and move.target in SAGA_OUTCOME_OF:
                self._outcomes(SAGA_OUTCOME_OF[move.target])
        return moved
