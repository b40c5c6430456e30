"""The chaos switches of every instance of a service (shop_common.web.chaos), set from the
console: the web service calls each instance's /admin/chaos directly (never through the
gateway), with the admin's own token, so each service checks the role itself.

An instance's refusal (401/403/409/422) is passed on; one that does not answer is reported
as unreachable in the results, never as a 5xx.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from shop_common.discovery import Registry
from shop_common.web.chaos import CHAOS_PATH

from web_service.domain.errors import Refused

# The console's name → the name in discovery (the FastAPI services, which install_chaos).
CHAOS_SERVICES = {
    "order-service": "order-service",
    "payment-service": "payment-service",
    "catalog-service": "catalog-service",
    "web-service": "web-service",
}


class ChaosClient:
    """GET/PUT/DELETE /admin/chaos on every instance of a service."""

    def __init__(self, registry: Registry, *, timeout: float) -> None:
        self._registry = registry
        self._http = httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(
        self, method: str, address: str, token: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(
                method,
                f"http://{address}{CHAOS_PATH}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError:
            return {"address": address, "reachable": False, "rules": []}
        if response.status_code in (401, 403, 409, 422):
            detail = response.json().get("detail", response.reason_phrase)
            raise Refused(response.status_code, str(detail))
        if response.status_code != 200:
            return {"address": address, "reachable": False, "rules": []}
        return {"address": address, "reachable": True, "rules": response.json()}

    async def _all(
        self, service: str, method: str, token: str, body: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        if service not in CHAOS_SERVICES:
            raise Refused(404, f"no chaos switches for {service!r}")
        name = CHAOS_SERVICES[service]
        await self._registry.watch(name)
        addresses = [i.address for i in self._registry.instances(name)]
        return list(await asyncio.gather(*(self._call(method, a, token, body) for a in addresses)))

    async def rules(self, token: str) -> dict[str, list[dict[str, Any]]]:
        """Every service's instances and their rules."""
        return {s: await self._all(s, "GET", token, None) for s in CHAOS_SERVICES}

    async def put(self, service: str, rule: dict[str, Any], token: str) -> list[dict[str, Any]]:
        """Set one rule on every instance of service."""
        return await self._all(service, "PUT", token, rule)

    async def clear(self, service: str, token: str) -> list[dict[str, Any]]:
        """Remove every rule of every instance of service."""
        return await self._all(service, "DELETE", token, None)
