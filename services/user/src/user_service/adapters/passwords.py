"""Password hashing with argon2id, off the event loop (hashing is deliberately slow), a few
hashes at a time (PASSWORD_HASH_CONCURRENCY); Argon2Hasher is the service layer's
PasswordHasher."""

from __future__ import annotations

import asyncio
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from user_service.settings import default_hash_concurrency

# A well-formed hash of a random password: verifying against it when the email is unknown
# costs the same time as a real check, so response time does not reveal which emails exist.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not-a-real-password-5f1c")


class Argon2Hasher:
    """argon2id off the event loop, at most `concurrency` hashes at once in this process; the
    service layer's PasswordHasher.

    A burst of logins queues at the hasher's slots, where a caller whose deadline passes is
    cancelled before any work is spent on it, instead of filling the thread pool with hashes
    that compete for the cores (and for memory: 64 MiB each) and finish after their callers
    have gone.
    """

    def __init__(self, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or default_hash_concurrency()
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def slot(self) -> asyncio.Semaphore:
        """This event loop's semaphore (a semaphore belongs to one loop)."""
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            slot = self._slots[loop] = asyncio.Semaphore(self.concurrency)
        return slot

    async def hash(self, password: str) -> str:
        """The argon2id hash of password."""
        async with self.slot():
            return await asyncio.to_thread(_HASHER.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when password matches; a None hash is checked against a dummy (constant time)."""

        def check() -> bool:
            try:
                return (
                    _HASHER.verify(password_hash or _DUMMY_HASH, password)
                    and password_hash is not None
                )
            except (VerificationError, InvalidHashError):
                return False

        async with self.slot():
            return await asyncio.to_thread(check)
