"""GET /orders: filters and tamper-evident keyset page tokens (newest first)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from order_service.domain.order import OrderStatus


class InvalidPageTokenError(ValueError):
    """A page token that is forged, corrupted or was issued for other filters."""


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


class PageTokenCodec:
    """Encodes a Cursor as an HMAC-signed, filter-bound, opaque URL-safe token."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:16]

    def encode(self, cursor: Cursor, order_filter: OrderFilter) -> str:
        """A token meaning "orders after cursor, same filters"."""
        body = json.dumps(
            {
                "t": cursor.created_at.isoformat(),
                "i": str(cursor.order_id),
                "f": order_filter.canonical,
            },
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(body + self._sign(body)).decode().rstrip("=")

    def decode(self, token: str, order_filter: OrderFilter) -> Cursor:
        """The cursor in token; InvalidPageTokenError when it cannot be trusted."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidPageTokenError("page_token is not valid") from exc
        body, signature = raw[:-16], raw[-16:]
        if len(raw) <= 16 or not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidPageTokenError("page_token is not valid")
        data = json.loads(body)
        if data.get("f") != order_filter.canonical:
            raise InvalidPageTokenError("page_token was issued for other filters")
        return Cursor(datetime.fromisoformat(data["t"]), UUID(data["i"]))
