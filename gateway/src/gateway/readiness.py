"""/ready: Redis answers and every backend has at least one known instance."""

from __future__ import annotations

from shop_common.web import ReadinessCheck

from gateway.state import RuntimeHolder


def readiness_checks(holder: RuntimeHolder) -> dict[str, ReadinessCheck]:
    """Checks reading the live runtime (not ready before the lifespan started it)."""

    async def redis() -> bool:
        return bool(await holder.get().redis.ping())

    async def instances() -> bool:
        runtime = holder.get()
        services = {route.backend for route in runtime.routes.routes}
        return all(runtime.registry.instances(service) for service in services)

    return {"redis": redis, "backends": instances}
