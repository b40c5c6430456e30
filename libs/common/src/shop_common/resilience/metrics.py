"""Prometheus metrics shared by every circuit breaker (one family, a name label)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "1 for the breaker's current state, 0 for the others.",
    ["name", "state"],
)
BREAKER_CALLS = Counter(
    "circuit_breaker_calls_total", "Calls through a breaker by outcome.", ["name", "outcome"]
)
BREAKER_REJECTIONS = Counter(
    "circuit_breaker_rejections_total", "Calls rejected without reaching the dependency.", ["name"]
)
BREAKER_FAILURE_RATE = Gauge(
    "circuit_breaker_failure_rate", "Failure rate over the sliding window (0..1).", ["name"]
)
