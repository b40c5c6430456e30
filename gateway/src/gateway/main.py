"""Composition root: `create_app(settings)` builds the gateway; the lifespan opens and closes IO."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import structlog
from fastapi import FastAPI
from shop_common.clients.user import UserClient
from shop_common.discovery import (
    HealthCheck,
    Registry,
    ServiceRegistration,
    local_instance,
    registry_from_settings,
)
from shop_common.resilience import BreakerConfig
from shop_common.web import ProblemError, instrument_app, problem_response
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.caching import CacheStep
from gateway.keys import key_ring_from_settings
from gateway.login_throttle import LoginThrottle
from gateway.pipeline import GatewayPipeline
from gateway.proxy import Proxy
from gateway.ratelimit import RateLimiter
from gateway.readiness import readiness_checks
from gateway.response_cache import ResponseCache
from gateway.routes import RouteTable, load_routes
from gateway.settings import Settings
from gateway.state import Runtime, RuntimeHolder
from gateway.token_api import router as token_router
from gateway.transcoding import build_users_router, user_service_breaker
from gateway.upstream import Backend, Upstreams
from gateway.user_events import UserEventsListener

_log = structlog.get_logger(__name__)
USER_SERVICE = "user-service"

# Bounds on what one request may make the gateway hold and forward (the front door's share of
# OWASP API4): nginx's defaults are of the same order (8 KiB request line, 100 header fields in
# Apache's LimitRequestFields, 60 s client_body_timeout between reads).
MAX_TARGET_BYTES = 8_192  # path + query → 414
MAX_HEADER_FIELDS = 100  # → 431
MAX_HEADER_BYTES = 32_768  # names + values of every field → 431
BODY_IDLE_SECONDS = 10.0  # longest wait for the next part of a request body → 408
BODY_TOTAL_SECONDS = 60.0  # longest time the whole body may take → 408


class RequestTimeoutError(ProblemError):
    """The client stopped sending its request body (a slow-loris body) → 408."""

    def __init__(self) -> None:
        super().__init__(408, detail="the request body did not arrive in time")


class RequestBoundsMiddleware:
    """Refuses an oversized request head (414, 431) and a body that trickles in (408).

    A body's messages must each arrive within `body_idle_seconds` and all of them within
    `body_total_seconds`; once the body is complete, `receive` is passed through untimed (the
    streaming responses wait on it for the client's disconnect). Pure ASGI, like the rest.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_target_bytes: int = MAX_TARGET_BYTES,
        max_header_fields: int = MAX_HEADER_FIELDS,
        max_header_bytes: int = MAX_HEADER_BYTES,
        body_idle_seconds: float = BODY_IDLE_SECONDS,
        body_total_seconds: float = BODY_TOTAL_SECONDS,
    ) -> None:
        self.app = app
        self.max_target_bytes = max_target_bytes
        self.max_header_fields = max_header_fields
        self.max_header_bytes = max_header_bytes
        self.body_idle_seconds = body_idle_seconds
        self.body_total_seconds = body_total_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if target > self.max_target_bytes:
            await _refuse(scope, receive, send, 414, "the request target is too long")
            return
        fields = scope.get("headers", ())
        if len(fields) > self.max_header_fields:
            await _refuse(scope, receive, send, 431, "too many header fields")
            return
        if sum(len(n) + len(v) for n, v in fields) > self.max_header_bytes:
            await _refuse(scope, receive, send, 431, "the header fields are too large")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_total_seconds
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            wait = min(self.body_idle_seconds, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except TimeoutError:
                raise RequestTimeoutError from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except RequestTimeoutError:
            if started:
                raise
            await _refuse(scope, receive, send, 408, "the request body did not arrive in time")


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    # Connection: close: what the client has not sent yet (or sent too much of) is not read.
    response = problem_response(
        Request(scope), status, detail=detail, headers={"Connection": "close"}
    )
    await response(scope, receive, send)


def _redis(settings: Settings) -> aioredis.Redis:
    # Blocking pool: under a burst, callers wait for a free connection instead of failing
    # (redis-py's default pool raises once max_connections are out).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    return aioredis.Redis(connection_pool=pool)


def _upstreams(settings: Settings, routes: RouteTable, registry: Registry) -> Upstreams:
    proxy = Proxy(pool_size=settings.upstream_pool_size)
    recovery = settings.breaker_recovery_seconds
    instance = BreakerConfig(
        consecutive_failures=settings.instance_breaker_failures,
        failure_rate_threshold=None,
        recovery_timeout=recovery,
    )
    service = BreakerConfig(
        consecutive_failures=settings.service_breaker_failures,
        failure_rate_threshold=None,
        recovery_timeout=recovery,
    )
    names = {r.backend for r in routes.routes if r.transcode is None}
    backends = {
        name: Backend(
            name,
            registry,
            proxy,
            instance_config=instance,
            service_config=service,
            balancer=settings.balancer,
            retry_backoff=settings.retry_initial_backoff_seconds,
        )
        for name in sorted(names)
    }
    return Upstreams(backends, proxy)


def create_app(settings: Settings | None = None, *, registry: Registry | None = None) -> FastAPI:
    """The gateway app; `registry` replaces the one chosen from settings (tests, Consul)."""
    settings = settings or Settings()
    routes = load_routes(settings.routes_file)
    keys = key_ring_from_settings(settings)
    holder = RuntimeHolder()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        discovery = registry or registry_from_settings(settings)
        services = sorted({r.backend for r in routes.routes} | {USER_SERVICE})
        await discovery.watch(*services)
        redis = _redis(settings)
        upstreams = _upstreams(settings, routes, discovery)
        user_addresses = [i.address for i in discovery.instances(USER_SERVICE)]
        users = UserClient(
            user_addresses or settings.user_service_addresses.split(","),
            default_timeout=settings.user_call_timeout_seconds,  # /auth/token's Authenticate too
        )
        cache = ResponseCache(redis, prefix=settings.cache_prefix)
        runtime = Runtime(
            settings=settings,
            routes=routes,
            keys=keys,
            issuer=keys.issuer(settings),
            verifier=keys.verifier(settings),
            redis=redis,
            limiter=RateLimiter(redis, prefix=settings.rate_limit_prefix),
            cache=cache,
            upstreams=upstreams,
            users=users,
            registry=discovery,
            login_throttle=(
                LoginThrottle.from_settings(redis, settings)
                if settings.login_throttle_enabled
                else None
            ),
        )
        listener = UserEventsListener(settings.amqp_url, CacheStep(cache))
        if settings.user_events_enabled:
            listener.start()
        holder.runtime = runtime
        app.state.user_events = listener
        instance = local_instance(settings.service_name, settings.host, settings.http_port)
        try:
            if settings.register_in_discovery:
                async with ServiceRegistration(discovery, instance, HealthCheck.http("/health")):
                    yield
            else:
                yield
        finally:
            holder.runtime = None
            await listener.stop()
            await upstreams.close()
            await users.close()
            await redis.aclose()
            await redis.connection_pool.aclose()
            if registry is None:
                await discovery.close()
            _log.info("gateway_stopped")

    app = FastAPI(
        title="shop gateway",
        version="1.0.0",
        description="The one front door: auth, rate limits, caching, breakers, proxy, REST→gRPC.",
        lifespan=lifespan,
        # The gateway's one rule for trailing slashes is in gateway.paths (they are dropped
        # before routing): no redirect, whose Location would be built from the request's Host.
        redirect_slashes=False,
    )
    app.state.gateway = holder
    app.add_middleware(GatewayPipeline, holder=holder)
    # Inside the request context (request id, access log), outside the pipeline and the router.
    app.add_middleware(RequestBoundsMiddleware)
    instrument_app(app, checks=readiness_checks(holder), max_body_bytes=settings.max_body_bytes)
    app.include_router(token_router)
    user_breaker = user_service_breaker(
        config=BreakerConfig(
            consecutive_failures=settings.service_breaker_failures,
            failure_rate_threshold=None,
            recovery_timeout=settings.breaker_recovery_seconds,
        )
    )
    app.include_router(
        build_users_router(
            lambda: holder.get().users,
            breaker=user_breaker,
            timeout_seconds=settings.user_call_timeout_seconds,
        )
    )
    return app
