"""The admin use case: read and flip a simulated provider's fault switches while it runs.

Every change is logged with the admin who made it. A provider without switches (a real one)
answers NoFaultSwitchesError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shop_common.logging import get_logger

from payment_service.service_layer.provider import FaultSwitches, ProviderFaults

log = get_logger(__name__)


class NoFaultSwitchesError(Exception):
    """The configured provider has no fault switches."""


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """The switches, what the breaker in front of the provider sees, and what it answered."""

    faults: ProviderFaults
    breaker_state: str
    charges: int
    unavailable_answers: int


class ProviderAdmin:
    """The switches of the running provider (None when it has none) and its breaker's state."""

    def __init__(self, switches: FaultSwitches | None, breaker_state: Callable[[], str]) -> None:
        self._switches = switches
        self._breaker_state = breaker_state

    def _provider(self) -> FaultSwitches:
        if self._switches is None:
            raise NoFaultSwitchesError("the configured provider has no fault switches")
        return self._switches

    def status(self) -> ProviderStatus:
        """The current switches and counters."""
        provider = self._provider()
        return ProviderStatus(
            provider.faults,
            self._breaker_state(),
            provider.charge_count,
            provider.unavailable_count,
        )

    def switch(self, changes: Mapping[str, object], *, admin: str) -> ProviderStatus:
        """Change some switches (validated by the caller) and return the new status."""
        self._provider().set_faults(**changes)
        log.info(
            "provider_switches_changed", admin=admin, **{k: str(v) for k, v in changes.items()}
        )
        return self.status()
