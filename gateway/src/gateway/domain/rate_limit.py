"""A rate-limit decision (admitted or not, what is left, when the window frees a slot) and the
RateLimit / RateLimit-Policy / Retry-After headers it renders."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimitDecision:
    """Outcome of one check; `headers()` renders the RateLimit / RateLimit-Policy fields."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: float
    checked: bool = True

    def headers(self) -> dict[str, str]:
        """RateLimit headers (draft-ietf-httpapi-ratelimit-headers) plus Retry-After when refused."""
        if not self.checked:
            return {}
        window = math.ceil(self.window_seconds)
        headers = {
            "RateLimit-Policy": f'"default";q={self.limit};w={window}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers
