"""A simulated payment provider: latency, transient failures, decline rules and a down switch.

It implements service_layer.provider.PaymentProvider and FaultSwitches (the admin endpoint flips
its switches at run time).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from decimal import Decimal
from uuid import UUID, uuid4

from payment_service.service_layer.provider import (
    PaymentDeclinedError,
    ProviderFaults,
    ProviderReceipt,
    ProviderUnavailableError,
)
from payment_service.settings import Settings


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


def provider_from_settings(settings: Settings) -> SimulatedProvider:
    """The simulated provider with the fault switches the settings start it with."""
    return SimulatedProvider(
        ProviderFaults(
            latency_ms=settings.provider_latency_ms,
            transient_failure_rate=settings.provider_transient_failure_rate,
            decline_above=settings.provider_decline_above,
            down=settings.provider_down,
        )
    )
