"""Response and request models of the payment API (amounts as exact decimal strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from shop_common.messaging.events import Money

from payment_service.domain.payment import Payment
from payment_service.service_layer.provider import ProviderFaults
from payment_service.service_layer.provider_admin import ProviderStatus

_PAYMENT_EXAMPLE: dict[str, JsonValue] = {
    "id": "5f0c6c1e-8a53-4f5e-9d7e-3f9b2a0d1c11",
    "order_id": "0b7e5a44-2d3c-4b8e-a1f0-6a7c9d2e4f10",
    "user_id": 42,
    "kind": "charge",
    "status": "succeeded",
    "amount": "20.5000",
    "currency": "EUR",
    "provider_ref": "ch_9b1de0c4a3f24f0e8a6d2c7b5e1f3a9d",
    "reason": None,
    "created_at": "2026-11-25T16:30:00Z",
}


class PaymentPublic(BaseModel):
    """A charge or a refund of one order."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PAYMENT_EXAMPLE]})

    id: UUID
    order_id: UUID
    user_id: int | None = Field(description="Owner of the order (null on rows older than it).")
    kind: Literal["charge", "refund"]
    status: Literal["succeeded", "declined"]
    amount: Money
    currency: str = Field(examples=["EUR"])
    provider_ref: str | None = Field(description="The provider's reference; none when declined.")
    reason: str | None = Field(description="Why the provider declined the charge.")
    created_at: datetime

    @classmethod
    def of(cls, row: Payment) -> PaymentPublic:
        """Map a stored payment."""
        if row.created_at is None:
            raise ValueError(f"payment {row.id} is not stored")
        return cls(
            id=row.id,
            order_id=row.order_id,
            user_id=row.user_id,
            kind=row.kind.value,
            status=row.status.value,
            amount=row.amount,
            currency=row.currency,
            provider_ref=row.provider_ref,
            reason=row.reason,
            created_at=row.created_at,
        )


class PaymentList(BaseModel):
    """The payments of one order, oldest first (a charge, then possibly its refund)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_PAYMENT_EXAMPLE]}]})

    items: list[PaymentPublic]


class ProviderState(BaseModel):
    """The simulated provider's fault switches and what the breaker in front of it sees."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "latency_ms": 5.0,
                    "transient_failure_rate": 0.0,
                    "decline_above": "10000.00",
                    "down": False,
                    "breaker_state": "closed",
                    "charges": 12,
                    "unavailable_answers": 0,
                }
            ]
        }
    )

    latency_ms: float
    transient_failure_rate: float
    decline_above: Money
    down: bool
    breaker_state: str = Field(description="closed, open, half_open, forced_open or disabled.")
    charges: int = Field(description="Distinct charges the provider accepted since start.")
    unavailable_answers: int = Field(description="Calls answered with an outage since start.")

    @classmethod
    def of(cls, status: ProviderStatus) -> ProviderState:
        """Map the admin use case's status."""
        faults = status.faults
        return cls(
            latency_ms=faults.latency_ms,
            transient_failure_rate=faults.transient_failure_rate,
            decline_above=faults.decline_above,
            down=faults.down,
            breaker_state=status.breaker_state,
            charges=status.charges,
            unavailable_answers=status.unavailable_answers,
        )


class ProviderSwitchesUpdate(BaseModel):
    """New values for some switches; switches left out keep their value.

    Strict: numbers are JSON numbers (`true` or `"50"` is a 422, not 1 or 50), `down` a JSON
    boolean, `decline_above` a decimal string.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"down": True}, {"transient_failure_rate": 0.2, "latency_ms": 50}]
        },
    )

    latency_ms: float | None = Field(default=None, ge=0, le=60_000)
    transient_failure_rate: float | None = Field(default=None, ge=0, le=1)
    decline_above: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$",
        examples=["500.00"],
        description="Charges above this amount are declined (a decimal string, never a number).",
    )
    down: bool | None = Field(default=None, strict=True)

    def changes(self) -> dict[str, object]:
        """The switches this update sets, named as ProviderFaults names them."""
        changes: dict[str, object] = {
            name: value
            for name, value in self.model_dump(exclude_none=True).items()
            if name in ProviderFaults.__dataclass_fields__
        }
        if self.decline_above is not None:
            changes["decline_above"] = Decimal(self.decline_above)
        return changes
