"""Circuit breaker overhead per call against a bare awaited call (A B A B in one run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from shop_common.resilience import BreakerConfig, CircuitBreaker

TARGET_US = 5.0


async def dependency() -> int:
    return 1


async def bare(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await dependency()
    return time.perf_counter() - start


async def through_breaker(breaker: CircuitBreaker, n: int) -> float:
    call = breaker.call
    start = time.perf_counter()
    for _ in range(n):
        await call(dependency)
    return time.perf_counter() - start


async def main(quick: bool) -> None:
    n, rounds = (20_000, 4) if quick else (200_000, 8)
    breaker = CircuitBreaker("bench", BreakerConfig())
    bare_total = breaker_total = 0.0
    for i in range(rounds):
        a = await bare(n)
        b = await through_breaker(breaker, n)
        bare_total += a
        breaker_total += b
        print(
            f"round {i + 1}: bare {a / n * 1e6:.3f} µs/call ({n / a:,.0f} ops/s), "
            f"breaker {b / n * 1e6:.3f} µs/call ({n / b:,.0f} ops/s)"
        )
    bare_us = bare_total / (n * rounds) * 1e6
    breaker_us = breaker_total / (n * rounds) * 1e6
    result = {
        "bench": "breaker_overhead",
        "bare_us": round(bare_us, 3),
        "breaker_us": round(breaker_us, 3),
        "overhead_us": round(breaker_us - bare_us, 3),
        "breaker_ops_s": round(1e6 / breaker_us),
        "target_us": TARGET_US,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-second run")
    asyncio.run(main(parser.parse_args().quick))
