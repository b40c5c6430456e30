"""THE composition root: `async with bootstrap(settings, **overrides) as app` builds the gateway.

One AsyncExitStack holds everything that is started (discovery watch, Redis pool, the backends'
HTTP session, the user-service channel, the user-events consumer, the discovery registration),
so whatever has started is unwound when a later step fails, and on exit in reverse order.
Overrides replace an adapter for tests: `discovery`, `redis`, `backends` (an Upstreams), `users`
(a UserClient), `clock` (the login throttle's fallback clock). What is passed in is used, never
closed: its owner closes it.

`App` is what the entrypoints need (gateway.entrypoints.context hands its parts to endpoints).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis
from shop_common.auth import TokenVerifier
from shop_common.clients.user import UserClient
from shop_common.discovery import (
    HealthCheck,
    Registry,
    ServiceRegistration,
    local_instance,
    registry_from_settings,
)
from shop_common.logging import get_logger
from shop_common.observability import configure_tracing
from shop_common.resilience import BreakerConfig

from gateway.adapters.backends import UPSTREAM_RETRY, Backend, Upstreams
from gateway.adapters.http_proxy import Proxy
from gateway.adapters.keys import key_ring_from_settings
from gateway.adapters.login_throttle import LoginThrottle
from gateway.adapters.rate_limit import RedisSlidingWindow
from gateway.adapters.response_cache import RedisResponseCache
from gateway.adapters.user_auth import UserServiceAuthenticator
from gateway.domain.routes import RouteTable, load_routes
from gateway.entrypoints.consumers import EvictionListener
from gateway.service_layer.cache_step import CacheStep
from gateway.service_layer.login import LoginService
from gateway.service_layer.rate_limits import RouteRateLimiter
from gateway.settings import Settings

_log = get_logger(__name__)
USER_SERVICE = "user-service"


@dataclass(frozen=True)
class App:
    """Everything a request or a message needs; one per running gateway."""

    settings: Settings
    routes: RouteTable
    verifier: TokenVerifier
    rate_limits: RouteRateLimiter
    cache: CacheStep
    upstreams: Upstreams
    users: UserClient
    registry: Registry
    login: LoginService
    jwks: dict[str, Any]
    redis: aioredis.Redis
    cache_events: EvictionListener


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


async def _close_redis(client: aioredis.Redis) -> None:
    await client.aclose()
    await client.connection_pool.aclose()


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


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    discovery: Registry | None = None,
    redis: aioredis.Redis | None = None,
    backends: Upstreams | None = None,
    users: UserClient | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[App]:
    """The running gateway's App; everything it started is stopped on exit (or on a failure)."""
    routes = load_routes(settings.routes_file)
    keys = key_ring_from_settings(settings)
    async with contextlib.AsyncExitStack() as stack:
        # First in, last out: the spans of the whole stop are flushed (shop_common.observability).
        tracing = configure_tracing(settings.service_name, settings)
        stack.push_async_callback(tracing.aclose)
        stack.callback(_log.info, "gateway_stopped")  # the last line of an orderly stop
        if discovery is None:
            discovery = registry_from_settings(settings)
            stack.push_async_callback(discovery.close)
        services = sorted({r.backend for r in routes.routes} | {USER_SERVICE})
        await discovery.watch(*services)
        if redis is None:
            redis = _redis(settings)
            stack.push_async_callback(_close_redis, redis)
        if backends is None:
            backends = _upstreams(settings, routes, discovery)
            stack.push_async_callback(backends.close)
        if users is None:
            user_addresses = [i.address for i in discovery.instances(USER_SERVICE)]
            users = UserClient(
                user_addresses or settings.user_service_addresses.split(","),
                default_timeout=settings.user_call_timeout_seconds,  # /auth/token's too
            )
            stack.push_async_callback(users.close)
        cache = CacheStep(RedisResponseCache(redis, prefix=settings.cache_prefix))
        throttle = (
            LoginThrottle.from_settings(redis, settings, clock=clock)
            if settings.login_throttle_enabled
            else None
        )
        issuer = keys.issuer(settings)
        listener = EvictionListener(settings.amqp_url, cache)
        stack.push_async_callback(listener.stop)
        if settings.cache_events_enabled:
            listener.start()
        if settings.register_in_discovery:
            instance = local_instance(settings.service_name, settings.host, settings.http_port)
            await stack.enter_async_context(
                ServiceRegistration(discovery, instance, HealthCheck.http("/health"))
            )
        yield App(
            settings=settings,
            routes=routes,
            verifier=keys.verifier(settings),
            rate_limits=RouteRateLimiter(
                RedisSlidingWindow(redis, prefix=settings.rate_limit_prefix)
            ),
            cache=cache,
            upstreams=backends,
            users=users,
            registry=discovery,
            login=LoginService(UserServiceAuthenticator(users), issuer, throttle),
            jwks=keys.jwks(),
            redis=redis,
            cache_events=listener,
        )
