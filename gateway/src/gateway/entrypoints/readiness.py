"""/ready: Redis answers and every backend has at least one known instance."""

from __future__ import annotations

from shop_common.web import ReadinessCheck

from gateway.entrypoints.context import AppHolder


def readiness_checks(holder: AppHolder) -> dict[str, ReadinessCheck]:
    """Checks reading the running App (not ready before the lifespan started it)."""

    async def redis() -> bool:
        return bool(await holder.get().redis.ping())

    async def instances() -> bool:
        app = holder.get()
        services = {route.backend for route in app.routes.routes}
        return all(app.registry.instances(service) for service in services)

    return {"redis": redis, "backends": instances}
