"""SingleFlight: one run per key at a time, shared outcome, a cancelled caller cancels nothing."""

from __future__ import annotations

import asyncio

import pytest
from shop_common.cache import SingleFlight


async def test_concurrent_calls_share_one_run_and_a_new_run_follows() -> None:
    flight: SingleFlight[int] = SingleFlight()
    runs = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        return runs

    waited = 0

    def on_wait() -> None:
        nonlocal waited
        waited += 1

    tasks = [asyncio.create_task(flight.run("k", work, on_wait)) for _ in range(50)]
    await asyncio.sleep(0)
    assert flight.in_flight("k") and not flight.in_flight("other")
    gate.set()
    assert await asyncio.gather(*tasks) == [1] * 50 and waited == 49
    assert len(flight) == 0
    assert await flight.run("k", work) == 2  # finished runs are not cached


async def test_a_cancelled_caller_does_not_cancel_the_run_for_the_others() -> None:
    flight: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    first = asyncio.create_task(flight.run("k", work))
    second = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == "done"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_an_error_reaches_every_caller() -> None:
    flight: SingleFlight[int] = SingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0)
        raise LookupError("source failed")

    results = await asyncio.gather(
        *(flight.run("k", boom) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert len(flight) == 0
