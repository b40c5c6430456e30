"""FastAPI dependencies: the running runtime and the token verifier."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from shop_common.auth import CachingTokenVerifier, TokenVerifier
from shop_common.web import ProblemError

from payment_service.runtime import PaymentRuntime
from payment_service.settings import Settings


def token_verifier(settings: Settings) -> TokenVerifier:
    """Verifies the gateway's RS256 tokens with the configured public keys (results cached
    until each token's exp: a token verifies once, not per request)."""
    return CachingTokenVerifier(
        settings.jwt_public_keys,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_leeway_seconds,
    )


async def runtime_of(request: Request) -> PaymentRuntime:
    """The runtime the lifespan started (503 while the process starts or stops).

    `async` so that FastAPI calls it in the event loop (a plain `def` costs a threadpool hop).
    """
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, PaymentRuntime):
        raise ProblemError(503, detail="the service is starting", headers={"Retry-After": "1"})
    return runtime


Runtime = Annotated[PaymentRuntime, Depends(runtime_of)]
