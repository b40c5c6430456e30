"""The payment provider port: what the use cases call to move money, and how it can answer.

A provider charges and refunds idempotently on the caller's key; it answers with a receipt,
PaymentDeclinedError (a business refusal: record it, never retry) or ProviderUnavailableError
(an outage: retry later). ProviderFaults are the switches of a provider that simulates faults
(adapters/provider/simulated.py), which the admin use case flips at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID


class ProviderUnavailableError(Exception):
    """The provider is down or failed transiently: retry later (counts for the breaker)."""


class PaymentDeclinedError(Exception):
    """The provider refused the charge for a business reason: do not retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProviderReceipt:
    """What the provider returns for an accepted charge or refund."""

    provider_ref: str
    amount: Decimal
    currency: str


class PaymentProvider(Protocol):
    """Charges and refunds; idempotent on the caller's key."""

    async def charge(
        self, *, idempotency_key: UUID, amount: Decimal, currency: str
    ) -> ProviderReceipt: ...

    async def refund(
        self, *, idempotency_key: UUID, provider_ref: str, amount: Decimal, currency: str
    ) -> ProviderReceipt: ...


@dataclass(frozen=True, slots=True)
class ProviderFaults:
    """Fault switches of a simulated provider, replaceable at run time (admin endpoint)."""

    latency_ms: float = 5.0
    transient_failure_rate: float = 0.0
    decline_above: Decimal = Decimal("10000.00")
    down: bool = False


class FaultSwitches(Protocol):
    """A provider whose faults can be switched while it runs, and what it has answered."""

    @property
    def faults(self) -> ProviderFaults: ...

    def set_faults(self, **changes: object) -> ProviderFaults: ...

    @property
    def charge_count(self) -> int: ...

    @property
    def unavailable_count(self) -> int: ...
