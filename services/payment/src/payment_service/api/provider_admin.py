"""GET/PUT /payments/admin/provider: the simulated provider's fault switches, at run time (admin)."""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends
from shop_common.auth import Principal
from shop_common.logging import get_logger
from shop_common.web import ProblemError, problem_responses, require_role
from shop_common.web.security import PrincipalDependency

from payment_service.api.deps import Runtime
from payment_service.api.schemas import ProviderState, ProviderSwitchesUpdate
from payment_service.runtime import PaymentRuntime

log = get_logger(__name__)


def _state(runtime: PaymentRuntime) -> ProviderState:
    provider = runtime.simulated
    if provider is None:
        raise ProblemError(409, detail="the configured provider has no fault switches")
    faults = provider.faults
    return ProviderState(
        latency_ms=faults.latency_ms,
        transient_failure_rate=faults.transient_failure_rate,
        decline_above=faults.decline_above,
        down=faults.down,
        breaker_state=runtime.guarded.breaker.state.value,
        charges=provider.charge_count,
        unavailable_answers=provider.unavailable_count,
    )


def provider_admin_router(auth: PrincipalDependency) -> APIRouter:
    """Read and flip the switches; every change is logged with the admin who made it."""
    router = APIRouter(prefix="/payments/admin/provider", tags=["admin"])
    Admin = Annotated[Principal, Depends(require_role("admin", auth))]

    @router.get(
        "",
        response_model=ProviderState,
        responses=problem_responses(401, 403, 409, 503),
        summary="The provider's fault switches",
    )
    async def get_provider(_admin: Admin, runtime: Runtime) -> ProviderState:
        return _state(runtime)

    @router.put(
        "",
        response_model=ProviderState,
        responses=problem_responses(401, 403, 409, 503),
        summary="Change some fault switches (the others keep their value)",
    )
    async def put_provider(
        update: ProviderSwitchesUpdate, admin: Admin, runtime: Runtime
    ) -> ProviderState:
        provider = runtime.simulated
        if provider is None:
            raise ProblemError(409, detail="the configured provider has no fault switches")
        changes = update.changes()
        provider.set_faults(**changes)
        log.info(
            "provider switches changed",
            admin=admin.subject,
            **{k: str(v) for k, v in changes.items()},
        )
        return _state(runtime)

    return router
