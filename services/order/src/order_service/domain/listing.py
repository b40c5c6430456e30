"""GET /orders: filters and tamper-evident keyset page tokens (newest first)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shop_common.pagination import (
    InvalidPageTokenError,
    PageTokenBody,
    PageTokenCodec,
    UtcTimestamp,
)

from order_service.domain.order import OrderStatus

__all__ = [
    "Cursor",
    "CursorBody",
    "InvalidPageTokenError",
    "OrderFilter",
    "OrderPageTokens",
    "PageSizes",
]


@dataclass(frozen=True, slots=True)
class PageSizes:
    """How many orders a page holds: `default` when the caller names none, never over `maximum`."""

    default: int
    maximum: int

    def size(self, requested: int | None) -> int:
        """The page size to serve for a request asking for `requested` (None: the default)."""
        return min(requested or self.default, self.maximum)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Who may be seen (user_id None = everyone, for admins), status and created range."""

    user_id: int | None
    status: OrderStatus | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive

    @property
    def canonical(self) -> str:
        """A stable text form, bound into page tokens so a token cannot switch filters."""
        return json.dumps(
            [
                self.user_id,
                self.status.value if self.status else None,
                self.created_from.isoformat() if self.created_from else None,
                self.created_to.isoformat() if self.created_to else None,
            ]
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """The keyset position: the last order of the previous page (created_at, id)."""

    created_at: datetime
    order_id: UUID


class CursorBody(PageTokenBody):
    """What a GET /orders token carries: `t` created_at (with offset), `i` order id, `f` filters.

    The keys match orders.created_at (TIMESTAMPTZ) and orders.id (UUID); `t` is RFC 3339 text
    kept in UTC, so an offset that would push it out of the calendar is refused here, not in
    the driver.
    """

    t: UtcTimestamp
    i: UUID


class OrderPageTokens:
    """Encodes a Cursor as an HMAC-signed, filter-bound, opaque URL-safe token."""

    def __init__(self, secret: str) -> None:
        self._codec = PageTokenCodec(secret, CursorBody)

    def encode(self, cursor: Cursor, order_filter: OrderFilter) -> str:
        """A token meaning "orders after cursor, same filters"."""
        body = CursorBody(t=cursor.created_at, i=cursor.order_id, f=order_filter.canonical)
        return self._codec.encode(body)

    def decode(self, token: str, order_filter: OrderFilter) -> Cursor:
        """The cursor in token; InvalidPageTokenError when it cannot be trusted."""
        body = self._codec.decode(token, order_filter.canonical)
        return Cursor(body.t, body.i)
