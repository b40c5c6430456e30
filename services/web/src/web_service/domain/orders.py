"""An order as a shopper follows it live: its state, and which states only move on request."""

from __future__ import annotations

from dataclasses import dataclass

# States an order leaves only when someone acts (a cancel) or never: a live view may stop there.
# PENDING (the saga: reservation, payment) and CANCELLED_REFUND_PENDING (the refund) move alone.
RESTING = frozenset({"PAID", "PAYMENT_FAILED", "REJECTED", "CANCELLED", "REFUNDED"})


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the live view shows of an order at one moment."""

    order_id: str
    status: str
    failure_reason: str | None
    updated_at: str

    @property
    def resting(self) -> bool:
        """True when the order will not move without a request."""
        return self.status in RESTING

    def as_event(self) -> dict[str, str | None]:
        """The JSON the stream sends."""
        return {
            "order_id": self.order_id,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "updated_at": self.updated_at,
        }
