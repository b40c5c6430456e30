"""The gateway's live components, built in the lifespan and reached from requests."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request
from shop_common.auth import TokenIssuer, TokenVerifier
from shop_common.clients.user import UserClient
from shop_common.discovery import Registry
from starlette.types import Scope

from gateway.keys import KeyRing
from gateway.login_throttle import LoginThrottle
from gateway.ratelimit import RateLimiter
from gateway.response_cache import ResponseCache
from gateway.routes import RouteTable
from gateway.settings import Settings
from gateway.upstream import Upstreams


@dataclass
class Runtime:
    """Everything a request needs; one per running app."""

    settings: Settings
    routes: RouteTable
    keys: KeyRing
    issuer: TokenIssuer
    verifier: TokenVerifier
    redis: aioredis.Redis
    limiter: RateLimiter
    cache: ResponseCache
    upstreams: Upstreams
    users: UserClient
    registry: Registry
    login_throttle: LoginThrottle | None  # None when LOGIN_THROTTLE_ENABLED is false


class RuntimeHolder:
    """Filled by the lifespan; the pipeline and the endpoints read it per request."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def get(self) -> Runtime:
        """The runtime; RuntimeError before the lifespan started it."""
        if self.runtime is None:
            raise RuntimeError("the gateway is not started (lifespan not run)")
        return self.runtime


def runtime_of(request: Request | Scope) -> Runtime:
    """The Runtime of the app serving this request."""
    app = request.app if isinstance(request, Request) else request["app"]
    holder: RuntimeHolder = app.state.gateway
    return holder.get()
