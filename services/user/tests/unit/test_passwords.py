"""Hashing is admitted a few at a time, so a caller that gives up while queued costs nothing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from shop_testing.wait import eventually
from user_service.adapters import passwords


async def test_a_caller_cancelled_while_queued_spends_no_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(passwords, "HASH_CONCURRENCY", 1)
    monkeypatch.setattr(passwords, "_slots", passwords.weakref.WeakKeyDictionary())
    release = threading.Event()
    hashed: list[str] = []

    class SlowHasher:
        def hash(self, password: str) -> str:
            hashed.append(password)
            release.wait(10)
            return f"hash-of-{password}"

    monkeypatch.setattr(passwords, "_HASHER", SlowHasher())
    first = asyncio.create_task(passwords.hash_password("first"))
    # The first caller holds the only slot, its hash running in a worker thread.
    await eventually(lambda: bool(hashed), what="the first hash running")
    queued = asyncio.create_task(passwords.hash_password("queued"))
    await asyncio.sleep(0)  # one loop step: it runs up to the slot, taken, and waits there
    assert passwords._slot().locked() and not queued.done()
    queued.cancel()  # its deadline passed while it waited for a slot
    release.set()
    assert await first == "hash-of-first"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert hashed == ["first"]


async def test_hash_and_verify_still_round_trip() -> None:
    stored = await passwords.hash_password("correct horse")
    assert await passwords.verify_password(stored, "correct horse")
    assert not await passwords.verify_password(stored, "wrong horse")
    assert not await passwords.verify_password(None, "anything")
