"""Password hashing with argon2id, off the event loop (hashing is deliberately slow)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# A well-formed hash of a random password: verifying against it when the email is unknown
# costs the same time as a real check, so response time does not reveal which emails exist.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not-a-real-password-5f1c")


async def hash_password(password: str) -> str:
    """The argon2id hash of password."""
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

    return await asyncio.to_thread(check)
