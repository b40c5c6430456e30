"""The breaker in front of the provider: outages open it, declines never do, open means retry later."""

from __future__ import annotations

import random
from decimal import Decimal
from uuid import uuid4

import pytest
from payment_service.adapters.provider.guarded import (
    GuardedProvider,
    ProviderCircuitOpenError,
    provider_breaker,
)
from payment_service.adapters.provider.simulated import SimulatedProvider
from payment_service.service_layer.provider import (
    PaymentDeclinedError,
    ProviderFaults,
    ProviderUnavailableError,
)
from shop_common.resilience import CircuitState


def guarded(**faults: object) -> tuple[GuardedProvider, SimulatedProvider]:
    provider = SimulatedProvider(
        ProviderFaults(latency_ms=0, decline_above=Decimal("100")), rng=random.Random(1)
    )
    provider.set_faults(**faults)
    return GuardedProvider(provider, provider_breaker(3, recovery_seconds=60)), provider


async def charge(g: GuardedProvider, amount: str = "10") -> None:
    await g.charge(idempotency_key=uuid4(), amount=Decimal(amount), currency="EUR")


async def test_consecutive_outages_open_the_breaker_and_later_calls_never_reach_the_provider() -> (
    None
):
    g, provider = guarded(down=True)
    for _ in range(3):
        with pytest.raises(ProviderUnavailableError):
            await charge(g)
    assert g.breaker.state is CircuitState.OPEN

    with pytest.raises(ProviderCircuitOpenError) as rejected:
        await charge(g)

    assert isinstance(rejected.value, ProviderUnavailableError)  # the consumer retries it
    assert rejected.value.retry_after > 0
    assert provider.unavailable_count == 3


async def test_declines_are_answers_not_failures() -> None:
    g, provider = guarded()
    for _ in range(10):
        with pytest.raises(PaymentDeclinedError):
            await charge(g, "500")
    assert g.breaker.state is CircuitState.CLOSED
    await charge(g)
    assert provider.charge_count == 1


async def test_refunds_pass_through_the_same_breaker() -> None:
    g, _ = guarded(down=True)
    for _ in range(3):
        with pytest.raises(ProviderUnavailableError):
            await g.refund(
                idempotency_key=uuid4(), provider_ref="ch_1", amount=Decimal("1"), currency="EUR"
            )
    with pytest.raises(ProviderCircuitOpenError):
        await charge(g)
