"""The failures the adapters raise and the pipeline answers: each one says the status it becomes."""

from __future__ import annotations

import math


class UpstreamError(Exception):
    """A backend failure already mapped to the status the client sees (502 or 504)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ServiceUnavailableError(Exception):
    """No instance can be called now (breaker open, all ejected, none registered) → 503."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_seconds = max(1, math.ceil(retry_after))


class StoreUnavailableError(Exception):
    """A shared store (Redis: rate limits, response cache) could not be asked."""


class RateLimiterUnavailableError(Exception):
    """The rate-limit store could not be asked and the route fails closed (→ 503)."""
