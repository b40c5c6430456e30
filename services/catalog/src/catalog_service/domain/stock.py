"""Stock and reservations: lines, outcomes and the rules of a reservation's life.

A reservation belongs to one order and holds all its lines or none. Its states:
RESERVED (stock taken, expires at `expires_at`) → CONFIRMED (the order was paid; never expires)
or RELEASED (stock given back, exactly once); RESERVED or CONFIRMED → RELEASED. An order whose
lines could not all be taken gets a REJECTED record (nothing taken), so a redelivered request
gets the same answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from catalog_service.domain.errors import InvalidQuantityError
from catalog_service.domain.product import check_sku

MAX_STOCK = 1_000_000_000  # per sku; the column is BIGINT, the rule keeps sums far from it
MAX_RESTOCK = 1_000_000
MAX_LINE_QUANTITY = 10_000
MAX_LINES = 100


class ReservationStatus(StrEnum):
    """Where a reservation is in its life (see the module docstring)."""

    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    REJECTED = "rejected"


RELEASABLE = (ReservationStatus.RESERVED, ReservationStatus.CONFIRMED)


@dataclass(frozen=True, slots=True)
class StockLine:
    """Quantity of one sku in a reservation."""

    sku: str
    quantity: int


def reservation_lines(lines: Iterable[StockLine]) -> list[StockLine]:
    """The lines to take: skus checked, duplicates summed, sorted by sku (the lock order, so two
    reservations never wait on each other's rows in opposite orders)."""
    total: Counter[str] = Counter()
    for line in lines:
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            raise InvalidQuantityError(f"a quantity must be 1..{MAX_LINE_QUANTITY}")
        total[check_sku(line.sku)] += line.quantity
    if not total or len(total) > MAX_LINES:
        raise InvalidQuantityError(f"a reservation holds 1..{MAX_LINES} skus")
    if any(q > MAX_LINE_QUANTITY for q in total.values()):
        raise InvalidQuantityError(f"a quantity must be 1..{MAX_LINE_QUANTITY}")
    return [StockLine(sku, total[sku]) for sku in sorted(total)]


def check_restock(quantity: int) -> int:
    """A restock quantity: 1..MAX_RESTOCK."""
    if not 1 <= quantity <= MAX_RESTOCK:
        raise InvalidQuantityError(f"a restock quantity must be 1..{MAX_RESTOCK}")
    return quantity


@dataclass(frozen=True, slots=True)
class Reservation:
    """The stock held for one order."""

    order_id: UUID
    status: ReservationStatus
    lines: tuple[StockLine, ...]
    expires_at: datetime | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    """What reserve answered: the reservation (RESERVED or REJECTED) and whether this call made it
    (False: an earlier call for the same order did, and this is its answer again)."""

    reservation: Reservation
    created: bool

    @property
    def reserved(self) -> bool:
        """The stock is held (or was, and is now confirmed or released)."""
        return self.reservation.status is not ReservationStatus.REJECTED
