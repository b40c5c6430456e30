"""The login throttle's in-memory fallback (gateway.adapters.login_throttle_local), directly and
behind LoginThrottle when Redis cannot be reached, on a clock the test moves."""

from __future__ import annotations

import redis.asyncio as aioredis
from gateway.adapters.login_throttle import LoginThrottle
from gateway.adapters.login_throttle_local import LocalLoginCounters
from gateway.domain.login_throttle import Policy

from .fakes import FakeClock

POLICY = Policy(free=2, window_seconds=60, base_seconds=1, max_seconds=300)


def test_counts_close_the_key_past_the_free_ones_and_forget_after_the_window() -> None:
    counters = LocalLoginCounters(max_entries=10)
    assert counters.count("k", POLICY, 0.0) == (1, 0.0)
    assert counters.count("k", POLICY, 1.0) == (2, 0.0)
    assert counters.count("k", POLICY, 2.0) == (3, 1.0)
    assert counters.blocked_for("k", 2.5) == 0.5
    assert counters.blocked_for("k", 3.0) == 0.0
    assert counters.count("k", POLICY, 200.0) == (1, 0.0)  # the window passed in quiet


def test_refund_and_forget() -> None:
    counters = LocalLoginCounters(max_entries=10)
    counters.count("k", POLICY, 0.0)
    counters.count("k", POLICY, 0.0)
    counters.refund("k", 0.0)
    assert counters.count("k", POLICY, 0.0) == (2, 0.0)
    counters.forget("k")
    assert counters.count("k", POLICY, 0.0) == (1, 0.0)


def test_the_table_is_bounded_oldest_first() -> None:
    counters = LocalLoginCounters(max_entries=2)
    for key in ("a", "b", "c"):
        counters.count(key, POLICY, 0.0)
    assert counters.count("a", POLICY, 0.0) == (1, 0.0)  # "a" was dropped


async def test_redis_down_falls_back_to_the_local_counters_on_the_injected_clock() -> None:
    clock = FakeClock()
    # Port 1 on loopback: refused at once, no Redis is ever reached.
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    throttle = LoginThrottle(client, account=POLICY, per_client=POLICY, clock=clock)
    try:
        admitted = [await throttle.begin("ada@example.com", "192.0.2.1") for _ in range(3)]
        assert all(a.admitted and a.local for a in admitted)
        refused = await throttle.begin("ada@example.com", "192.0.2.1")
        assert not refused.admitted and refused.closed == "account"
        clock.now += 1.5  # the 1 s backoff is over
        assert (await throttle.begin("ada@example.com", "192.0.2.1")).admitted
    finally:
        await client.aclose()
