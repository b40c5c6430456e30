"""A simulated payment provider: latency, transient failures, decline rules and a down switch."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol
from uuid import UUID, uuid4


class ProviderUnavailableError(Exception):
    """The provider is down or failed transiently: retry later (counts for the breaker)."""


class PaymentDeclinedError(Exception):
    """The provider refused the charge for a business reason: do not retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProviderFaults:
    """Fault switches, replaceable at run time (admin endpoint)."""

    latency_ms: float = 5.0
    transient_failure_rate: float = 0.0
    decline_above: Decimal = Decimal("10000.00")
    down: bool = False


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


class SimulatedProvider:
    """In-process provider whose faults can be switched while it runs."""

    def __init__(
        self, faults: ProviderFaults | None = None, *, rng: random.Random | None = None
    ) -> None:
        self._faults = faults or ProviderFaults()
        self._rng = rng or random.Random()
        # Like a real PSP: the same idempotency key never charges twice.
        self._charges: dict[UUID, ProviderReceipt] = {}
        self._refunds: dict[UUID, ProviderReceipt] = {}
        self.unavailable_count = 0

    @property
    def faults(self) -> ProviderFaults:
        """The current fault switches."""
        return self._faults

    def set_faults(self, **changes: object) -> ProviderFaults:
        """Change some switches (validated by the caller's schema) and return the new set."""
        self._faults = replace(self._faults, **changes)  # type: ignore[arg-type]
        return self._faults

    @property
    def charged_keys(self) -> frozenset[UUID]:
        """The idempotency keys (order ids) of the charges accepted so far."""
        return frozenset(self._charges)

    @property
    def charge_count(self) -> int:
        """Distinct charges accepted so far."""
        return len(self._charges)

    async def _simulate_call(self) -> None:
        faults = self._faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.down:
            self.unavailable_count += 1
            raise ProviderUnavailableError("payment provider is down")
        if faults.transient_failure_rate > 0 and self._rng.random() < faults.transient_failure_rate:
            self.unavailable_count += 1
            raise ProviderUnavailableError("payment provider transient failure")

    async def charge(
        self, *, idempotency_key: UUID, amount: Decimal, currency: str
    ) -> ProviderReceipt:
        """Charge once per key; decline above the configured amount."""
        await self._simulate_call()
        if idempotency_key in self._charges:
            return self._charges[idempotency_key]
        if amount > self._faults.decline_above:
            raise PaymentDeclinedError(f"amount {amount} {currency} above the card limit")
        receipt = ProviderReceipt(f"ch_{uuid4().hex}", amount, currency)
        self._charges[idempotency_key] = receipt
        return receipt

    async def refund(
        self, *, idempotency_key: UUID, provider_ref: str, amount: Decimal, currency: str
    ) -> ProviderReceipt:
        """Refund once per key."""
        await self._simulate_call()
        if idempotency_key in self._refunds:
            return self._refunds[idempotency_key]
        receipt = ProviderReceipt(f"re_{uuid4().hex}", amount, currency)
        self._refunds[idempotency_key] = receipt
        return receipt
