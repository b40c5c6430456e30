"""Unit tests of the simulated provider: idempotent charge, decline rule, faults switched live."""

from __future__ import annotations

import random
from decimal import Decimal
from uuid import uuid4

import pytest
from payment_service.adapters.provider.simulated import SimulatedProvider
from payment_service.service_layer.provider import (
    PaymentDeclinedError,
    ProviderFaults,
    ProviderUnavailableError,
)


def provider(**faults: object) -> SimulatedProvider:
    return SimulatedProvider(ProviderFaults(latency_ms=0, **faults), rng=random.Random(1))  # type: ignore[arg-type]


async def test_same_key_charges_once() -> None:
    p = provider()
    key = uuid4()
    first = await p.charge(idempotency_key=key, amount=Decimal("5.00"), currency="EUR")
    second = await p.charge(idempotency_key=key, amount=Decimal("5.00"), currency="EUR")
    assert first == second
    assert p.charge_count == 1


async def test_decline_above_limit() -> None:
    p = provider(decline_above=Decimal("100.00"))
    with pytest.raises(PaymentDeclinedError, match="above the card limit"):
        await p.charge(idempotency_key=uuid4(), amount=Decimal("100.01"), currency="EUR")
    assert p.charge_count == 0


async def test_down_switch_changed_at_run_time() -> None:
    p = provider()
    p.set_faults(down=True)
    with pytest.raises(ProviderUnavailableError):
        await p.charge(idempotency_key=uuid4(), amount=Decimal("1.00"), currency="EUR")
    p.set_faults(down=False)
    receipt = await p.charge(idempotency_key=uuid4(), amount=Decimal("1.00"), currency="EUR")
    assert receipt.provider_ref.startswith("ch_")


async def test_transient_failure_rate_is_applied() -> None:
    p = provider(transient_failure_rate=0.5)
    failures = 0
    for _ in range(200):
        try:
            await p.charge(idempotency_key=uuid4(), amount=Decimal("1.00"), currency="EUR")
        except ProviderUnavailableError:
            failures += 1
    assert 50 < failures < 150
    assert p.charge_count == 200 - failures


async def test_refund_is_idempotent() -> None:
    p = provider()
    key = uuid4()
    r1 = await p.refund(
        idempotency_key=key, provider_ref="ch_x", amount=Decimal("2.00"), currency="EUR"
    )
    r2 = await p.refund(
        idempotency_key=key, provider_ref="ch_x", amount=Decimal("2.00"), currency="EUR"
    )
    assert r1 == r2
