"""The provider behind a circuit breaker: outages open it, declines never count against it.

Each charge and refund is a client span (`payment.charge`, `payment.refund`): no library
instrumentation sees the provider call, whatever transport a real provider uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from uuid import UUID

from opentelemetry import trace
from shop_common.resilience import BreakerConfig, CircuitBreaker, CircuitOpenError
from shop_common.resilience import default_is_failure as _default_is_failure

from payment_service.service_layer.provider import (
    PaymentProvider,
    ProviderReceipt,
    ProviderUnavailableError,
)

BREAKER_NAME = "payment-provider"
_tracer = trace.get_tracer(__name__)


class ProviderCircuitOpenError(ProviderUnavailableError):
    """The breaker refused the call without reaching the provider: retry later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"payment provider circuit is open; retry after {retry_after:.1f}s")
        self.retry_after = retry_after


def is_provider_failure(exc: BaseException) -> bool:
    """Outages and transport errors count; a decline is a business answer and does not."""
    return isinstance(exc, ProviderUnavailableError) or _default_is_failure(exc)


def provider_breaker(consecutive_failures: int, recovery_seconds: float) -> CircuitBreaker:
    """The breaker guarding the payment provider."""
    config = BreakerConfig(
        consecutive_failures=consecutive_failures, recovery_timeout=recovery_seconds
    )
    return CircuitBreaker(BREAKER_NAME, config, is_failure=is_provider_failure)


class GuardedProvider:
    """A PaymentProvider whose calls pass through a breaker; an open breaker is an outage."""

    def __init__(self, provider: PaymentProvider, breaker: CircuitBreaker) -> None:
        self.provider = provider
        self.breaker = breaker

    async def charge(
        self, *, idempotency_key: UUID, amount: Decimal, currency: str
    ) -> ProviderReceipt:
        """Charge through the breaker."""
        with (
            _tracer.start_as_current_span(
                "payment.charge",
                kind=trace.SpanKind.CLIENT,
                attributes={"payment.amount": str(amount), "payment.currency": currency},
            ),
            _circuit_open_as_outage(),
        ):
            return await self.breaker.call(
                self.provider.charge,
                idempotency_key=idempotency_key,
                amount=amount,
                currency=currency,
            )

    async def refund(
        self, *, idempotency_key: UUID, provider_ref: str, amount: Decimal, currency: str
    ) -> ProviderReceipt:
        """Refund through the breaker."""
        with (
            _tracer.start_as_current_span(
                "payment.refund",
                kind=trace.SpanKind.CLIENT,
                attributes={"payment.amount": str(amount), "payment.currency": currency},
            ),
            _circuit_open_as_outage(),
        ):
            return await self.breaker.call(
                self.provider.refund,
                idempotency_key=idempotency_key,
                provider_ref=provider_ref,
                amount=amount,
                currency=currency,
            )


@contextmanager
def _circuit_open_as_outage() -> Iterator[None]:
    """An open breaker is an outage of the provider (ProviderCircuitOpenError)."""
    try:
        yield
    except CircuitOpenError as exc:
        raise ProviderCircuitOpenError(exc.retry_after) from exc
