"""Hashing is admitted a few at a time, so a caller that gives up while queued costs nothing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from shop_testing.wait import eventually
from user_service.adapters import passwords
from user_service.settings import Settings, default_hash_concurrency


async def test_a_caller_cancelled_while_queued_spends_no_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    hashed: list[str] = []

    class SlowHasher:
        def hash(self, password: str) -> str:
            hashed.append(password)
            release.wait(10)
            return f"hash-of-{password}"

    monkeypatch.setattr(passwords, "_HASHER", SlowHasher())
    hasher = passwords.Argon2Hasher(concurrency=1)
    first = asyncio.create_task(hasher.hash("first"))
    # The first caller holds the only slot, its hash running in a worker thread.
    await eventually(lambda: bool(hashed), what="the first hash running")
    queued = asyncio.create_task(hasher.hash("queued"))
    await asyncio.sleep(0)  # one loop step: it runs up to the slot, taken, and waits there
    assert hasher.slot().locked() and not queued.done()
    queued.cancel()  # its deadline passed while it waited for a slot
    release.set()
    assert await first == "hash-of-first"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert hashed == ["first"]


async def test_hash_and_verify_still_round_trip() -> None:
    hasher = passwords.Argon2Hasher()
    stored = await hasher.hash("correct horse")
    assert await hasher.verify(stored, "correct horse")
    assert not await hasher.verify(stored, "wrong horse")
    assert not await hasher.verify(None, "anything")


def test_the_concurrency_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSWORD_HASH_CONCURRENCY", "1")
    assert Settings().password_hash_concurrency == 1
    monkeypatch.delenv("PASSWORD_HASH_CONCURRENCY")
    assert Settings().password_hash_concurrency == default_hash_concurrency()
    monkeypatch.setenv("PASSWORD_HASH_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="password_hash_concurrency"):
        Settings()
