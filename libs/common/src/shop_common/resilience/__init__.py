"""Resilience: circuit breaker, retries (one policy: resilience.retry), deadlines, composition."""

from shop_common.resilience.breaker import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    breaker_for,
)
from shop_common.resilience.classify import default_is_failure
from shop_common.resilience.compose import resilient_call
from shop_common.resilience.retry import RetryPolicy, any_exception, backoff_delays, retry_call
from shop_common.resilience.timeouts import Deadline, with_timeout

__all__ = [
    "BreakerConfig",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Deadline",
    "RetryPolicy",
    "any_exception",
    "backoff_delays",
    "breaker_for",
    "default_is_failure",
    "resilient_call",
    "retry_call",
    "with_timeout",
]
