"""Per-route rate limits: one check per request against the route's limit, following the route's
fail mode when the store cannot be asked (open: let through uncounted; closed: refuse, 503).

The store is anything shaped like RateLimitStore (a Redis sliding window in
gateway.adapters.rate_limit, a dict in the unit tests).
"""

from __future__ import annotations

import math
from typing import Protocol

from prometheus_client import Counter
from shop_common.logging import get_logger

from gateway.domain.errors import RateLimiterUnavailableError, StoreUnavailableError
from gateway.domain.rate_limit import RateLimitDecision
from gateway.domain.routes import RateLimitConfig

UNCHECKED = Counter(
    "gateway_rate_limit_unchecked_total",
    "Requests the rate limit could not count because Redis failed, by route and fail mode "
    "(open: let through uncounted; closed: refused with 503).",
    ["route", "fail"],
)
_log = get_logger("gateway.ratelimit")


class RateLimitStore(Protocol):
    """Counts one request in a window if there is room (atomically across gateway processes)."""

    async def hit(
        self, route_name: str, identity: str, limit: int, window_ms: int
    ) -> tuple[bool, int, int]:
        """(admitted, remaining, ms until a slot frees); StoreUnavailableError on failure."""
        ...


class RouteRateLimiter:
    """Checks (identity, route) against a route's RateLimitConfig."""

    def __init__(self, store: RateLimitStore) -> None:
        self._store = store
        # One warning when the store starts failing and one line when it answers again.
        self._degraded = False

    async def check(
        self, identity: str, route_name: str, config: RateLimitConfig
    ) -> RateLimitDecision:
        """Admit or refuse one request; store errors follow the route's fail mode."""
        window_ms = max(1, int(config.window_seconds * 1000))
        try:
            allowed, remaining, reset_ms = await self._store.hit(
                route_name, identity, config.limit, window_ms
            )
        except StoreUnavailableError as exc:
            UNCHECKED.labels(route_name, config.fail).inc()
            if not self._degraded:
                self._degraded = True
                _log.warning(
                    "rate_limiter_degraded",
                    route=route_name,
                    fail=config.fail,
                    error=str(exc),
                )
            if config.fail == "closed":
                raise RateLimiterUnavailableError(str(exc)) from exc
            return RateLimitDecision(
                True, config.limit, config.limit, 0, config.window_seconds, False
            )
        if self._degraded:
            self._degraded = False
            _log.info("rate_limiter_recovered", route=route_name)
        return RateLimitDecision(
            allowed=allowed,
            limit=config.limit,
            remaining=remaining,
            reset_seconds=math.ceil(reset_ms / 1000),
            window_seconds=config.window_seconds,
        )
