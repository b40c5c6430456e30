"""A verified-token cache: RS256 verification costs more than the rest of the hot path.

A token is verified once, then its Principal is served from memory until the token's own
exp (never longer). Only successes are cached: a bad token is re-verified (and refused) each
time. The key set is fixed for a process's life, so no cached token outlives its key.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shop_common.auth import Principal, TokenVerifier


class CachingVerifier(TokenVerifier):
    """TokenVerifier whose verify() remembers up to max_entries successful results."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Share the inner verifier's state; only verify() differs.
        self.__dict__.update(verifier.__dict__)
        self._inner = verifier
        self._max_entries = max_entries
        self._clock = clock
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        """The cached principal while the token is unexpired, else a full verification."""
        hit = self._verified.get(token)
        now = self._clock()
        if hit is not None and now < hit[1]:
            return hit[0]
        principal = self._inner.verify(token)
        expires = principal.claims.get("exp")
        if isinstance(expires, int | float):
            if len(self._verified) >= self._max_entries:
                self._verified.pop(next(iter(self._verified)))  # oldest first
            self._verified[token] = (principal, float(expires))
        return principal
