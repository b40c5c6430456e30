"""The login throttle's counters in process memory: the fail-open fallback while Redis is down
(the same numbers as the Redis scripts, per process; see gateway.domain.login_throttle)."""

from __future__ import annotations

from collections import OrderedDict

from gateway.domain.login_throttle import Policy


class LocalLoginCounters:
    """The same counters in process memory (Redis down), a key's block kept beside its count.
    Bounded: when full, the least recently counted keys go first."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._blocks: OrderedDict[str, float] = OrderedDict()

    def _trim(self) -> None:
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)
        while len(self._blocks) > self._max:
            self._blocks.popitem(last=False)

    def blocked_for(self, key: str, now: float) -> float:
        until = self._blocks.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._blocks[key]
            return 0.0
        return until - now

    def count(self, key: str, policy: Policy, now: float) -> tuple[int, float]:
        n, expires = self._counts.pop(key, (0, now))
        n = n + 1 if expires > now else 1
        self._counts[key] = (n, now + policy.window_seconds)
        delay = policy.delay_seconds(n)
        if delay:
            self._blocks.pop(key, None)
            self._blocks[key] = now + delay
        self._trim()
        return n, delay

    def forget(self, key: str) -> None:
        self._counts.pop(key, None)
        self._blocks.pop(key, None)

    def refund(self, key: str, now: float) -> None:
        n, expires = self._counts.get(key, (0, now))
        if n > 0 and expires > now:
            self._counts[key] = (n - 1, expires)
