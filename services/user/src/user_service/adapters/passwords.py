"""Password hashing with argon2id, off the event loop (hashing is deliberately slow), a few
hashes at a time; Argon2Hasher is the service layer's PasswordHasher."""

from __future__ import annotations

import asyncio
import os
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# A well-formed hash of a random password: verifying against it when the email is unknown
# costs the same time as a real check, so response time does not reveal which emails exist.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not-a-real-password-5f1c")

# At most this many hashes run at once per process. A burst of logins queues here, where a caller
# whose deadline passes is cancelled before any work is spent on it, instead of filling the
# thread pool with hashes that compete for the cores and finish after their callers have gone.
HASH_CONCURRENCY = max(1, os.cpu_count() or 1)
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slot() -> asyncio.Semaphore:
    """This event loop's hashing semaphore (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(HASH_CONCURRENCY)
    return slot


async def hash_password(password: str) -> str:
    """The argon2id hash of password."""
    async with _slot():
        return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when password matches; a None hash is checked against a dummy (constant time)."""

    def check() -> bool:
        try:
            return (
                _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    async with _slot():
        return await asyncio.to_thread(check)


class Argon2Hasher:
    """hash_password / verify_password as the service layer's PasswordHasher."""

    async def hash(self, password: str) -> str:
        """The argon2id hash of password."""
        return await hash_password(password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when password matches (see verify_password)."""
        return await verify_password(password_hash, password)
