"""Login throttling for POST /auth/token: exponential backoff per account, a budget per client.

This module is the policy (keys, backoff schedule, answers); the counters live in Redis
(gateway.adapters.login_throttle) or, when Redis fails, in process memory
(gateway.adapters.login_throttle_local).

Asked BEFORE the password goes to the user service (argon2 is deliberately expensive, so a
refused attempt must cost the system nothing but one Redis round trip):

- Per account (the username, normalised: NFKC, trimmed, case-folded, then hashed, so
  "Ada@X.io " and "ada@x.io" share one counter and no email is stored in Redis). Every attempt
  that is let through is counted first, atomically with the check, so a burst of parallel
  guesses cannot all slip past the same free slot. The first `free` attempts cost nothing;
  each one after that closes the account for base * 2**k seconds (1, 2, 4, ... up to the cap)
  before the next attempt is heard. Attempts refused while it is closed are not counted and do
  not extend it. A correct password reopens the account and clears its counter; the counter
  otherwise forgets after `window` seconds without an attempt. So the worst an attacker can
  impose on a victim is one cap-long delay per guess it pays for, never a lockout.
- Per client address (gateway.domain.forwarding: the peer, or the client a trusted proxy names; IPv6
  clients by their /64, which one host gets for free). Only failures are counted (many users
  logging in from one address, as the e2e suites and an office NAT do, cost nothing), after the
  user service said no, with a larger free budget and the same backoff. Success does not reset
  it (an attacker would log in to its own account between guesses).

Both live in Redis (one Lua script per step, Redis's clock, TTL'd keys), shared by every
gateway process.

Redis unavailable: fail OPEN to a per-process throttle with the same numbers (an in-memory
table of bounded size). Failing closed would let a Redis outage (or an attacker who can cause
one) stop every user from logging in, for a control whose job is to slow guessing, not to
authorise anything; failing open with no throttle at all would hand an attacker unlimited
guesses for the length of the outage. The local fallback keeps the backoff per account and
per client on each process (N processes: at most N times the budget) and answers 401/429 as
usual, never 5xx. The switch is logged once each way and counted in
gateway_login_throttle_fallback_total.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import unicodedata
from dataclasses import dataclass
from typing import Literal

Scope = Literal["account", "client"]


def normalise_username(username: str) -> str:
    """One spelling per account: NFKC, surrounding whitespace gone, case-folded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def account_key(username: str) -> str:
    """The account's counter id: a hash, so Redis never holds an email address."""
    return hashlib.sha256(normalise_username(username).encode("utf-8")).hexdigest()[:32]


def client_key(address: str) -> str:
    """The client's counter id: the address, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Policy:
    """Free attempts, the counter's window, and the backoff (base doubling up to cap)."""

    free: int
    window_seconds: float
    base_seconds: float
    max_seconds: float

    def delay_seconds(self, count: int) -> float:
        """How long the count-th attempt closes the key for (0 while it is a free one)."""
        if count <= self.free:
            return 0.0
        k = count - self.free - 1
        if k >= 40:
            return self.max_seconds
        return float(min(self.max_seconds, self.base_seconds * 2**k))

    def args(self) -> list[int]:
        """ARGV for the scripts: free, window ms, base ms, cap ms."""
        return [
            self.free,
            max(1, int(self.window_seconds * 1000)),
            max(1, int(self.base_seconds * 1000)),
            max(1, int(self.max_seconds * 1000)),
        ]


@dataclass(frozen=True)
class Admission:
    """The answer to "may this attempt be heard?"."""

    admitted: bool
    retry_after_seconds: int = 0
    closed: Scope | None = None
    local: bool = False


@dataclass(frozen=True)
class Failure:
    """A failure as counted for the client: how many of its free failures are left."""

    client_failures: int
    remaining: int
    policy: Policy

    def headers(self) -> dict[str, str]:
        """RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for the client's budget."""
        window = math.ceil(self.policy.window_seconds)
        return {
            "RateLimit-Policy": f'"login-failures";q={self.policy.free};w={window}',
            "RateLimit": f'"login-failures";r={self.remaining};t={window}',
        }
