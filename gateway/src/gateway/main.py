"""Composition root: `create_app(settings)` builds the gateway; the lifespan opens and closes IO."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

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
from shop_common.web import instrument_app

from gateway.bounds import RequestBoundsMiddleware
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
from gateway.upstream import UPSTREAM_RETRY, Backend, Upstreams
from gateway.user_events import UserEventsListener

_log = structlog.get_logger(__name__)
USER_SERVICE = "user-service"


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
            retry=replace(UPSTREAM_RETRY, initial_backoff=settings.retry_initial_backoff_seconds),
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
    app.add_middleware(
        RequestBoundsMiddleware,
        max_target_bytes=settings.max_target_bytes,
        max_header_fields=settings.max_header_fields,
        max_header_bytes=settings.max_header_bytes,
        body_idle_seconds=settings.body_idle_seconds,
        body_total_seconds=settings.body_total_seconds,
    )
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
