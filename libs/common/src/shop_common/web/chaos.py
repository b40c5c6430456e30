"""Chaos switches: added latency or an error ratio on a route of a FastAPI service, set at run
time by an admin (the system console), off by default, and refused in production.

`install_chaos(app, settings)` is the one line a service adds to its create_app: a pure ASGI
middleware (a rule matches a path prefix; /health, /ready, /metrics and the switches themselves
are never slowed or failed) and three endpoints, admin only (a verified bearer token with the
admin role; 401/403 problem+json otherwise):

- GET /admin/chaos: the rules in force;
- PUT /admin/chaos: set one rule `{"path_prefix": "/orders", "latency_ms": 200,
  "error_ratio": 0.25}` (latency 0..10000 ms, ratio 0..1; a rule of 0 and 0 removes it);
- DELETE /admin/chaos: remove every rule.

With ENVIRONMENT=production every switch answers 409 and nothing is ever injected. An injected
error is a 503 problem with Retry-After: 1 (what a sick dependency answers), so the clients'
own retries and breakers are what the switch exercises.
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
import asyncio
import random
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from shop_common.auth import Principal
from shop_common.settings import ServiceSettings
from shop_common.web.app import token_verifier
from shop_common.web.problems import ProblemError, problem_response
from shop_common.web.security import bearer_principal, require_role

CHAOS_PATH = "/admin/chaos"
NEVER_TOUCHED = ("/health", "/ready", "/metrics", CHAOS_PATH)
MAX_RULES = 20


class ChaosRule(BaseModel):
    """Latency and an error ratio for the requests whose path starts with path_prefix."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    path_prefix: str = Field(pattern=r"^/[A-Za-z0-9/_.-]{0,200}$")
    latency_ms: float = Field(default=0, ge=0, le=10_000)
    error_ratio: float = Field(default=0, ge=0, le=1)


class ChaosRules:
    """The rules in force (longest matching prefix wins)."""

    def __init__(self) -> None:
        self._rules: dict[str, ChaosRule] = {}

    def all(self) -> list[ChaosRule]:
        """Every rule, by prefix."""
        return [self._rules[k] for k in sorted(self._rules)]

    def put(self, rule: ChaosRule) -> None:
        """Set (or, with no latency and no errors, remove) the rule of its prefix."""
        if rule.latency_ms == 0 and rule.error_ratio == 0:
            self._rules.pop(rule.path_prefix, None)
        elif rule.path_prefix in self._rules or len(self._rules) < MAX_RULES:
            self._rules[rule.path_prefix] = rule
        else:
            raise ProblemError(409, detail=f"at most {MAX_RULES} chaos rules")

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()

    def for_path(self, path: str) -> ChaosRule | None:
        """The rule of the longest prefix of path, unless the path is never touched."""
        if not self._rules or path.startswith(NEVER_TOUCHED):
            return None
        found = [r for p, r in self._rules.items() if path.startswith(p)]
        return max(found, key=lambda r: len(r.path_prefix)) if found else None


class ChaosMiddleware:
    """Applies the matching rule: sleep latency_ms, then fail error_ratio of the requests."""

    def __init__(self, app: ASGIApp, rules: ChaosRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.rules.for_path(scope["path"]) if scope["type"] == "http" else None
        if rule is not None:
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.error_ratio and random.random() < rule.error_ratio:
                response = problem_response(
                    None,
                    503,
                    detail="injected by a chaos switch",
                    headers={"Retry-After": "1"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_chaos(app: FastAPI, settings: ServiceSettings) -> ChaosRules:
    """Add the middleware and the admin endpoints (see the module docstring)."""
    rules = ChaosRules()
    verifier = token_verifier(settings)
    admin = require_role("admin", bearer_principal(verifier))
    Admin = Annotated[Principal, Depends(admin)]
    router = APIRouter(prefix=CHAOS_PATH, tags=["chaos"], include_in_schema=False)

    def allowed() -> None:
        if settings.environment == "production":
            raise ProblemError(409, detail="chaos switches are off in production")

    @router.get("")
    async def chaos_rules(caller: Admin) -> list[ChaosRule]:
        return rules.all()

    @router.put("")
    async def put_chaos_rule(rule: ChaosRule, caller: Admin) -> list[ChaosRule]:
        allowed()
        rules.put(rule)
        return rules.all()

    @router.delete("")
    async def clear_chaos_rules(caller: Admin) -> list[ChaosRule]:
        allowed()
        rules.clear()
        return rules.all()

    app.include_router(router)
    # Innermost (after request context, metrics and the body limit): an injected answer is
    # counted, logged and carries the request id like any other.
    app.user_middleware.append(Middleware(ChaosMiddleware, rules=rules))
    return rules
