"""Per-call context set by the interceptors and read by the servicer."""

from __future__ import annotations

from contextvars import ContextVar

from shop_common.auth import Principal

current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
