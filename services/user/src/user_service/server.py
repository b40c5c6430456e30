"""`create_server()` and `UserServer`: bootstrap behind a start/stop handle, for callers that
start a user service and stop it later instead of holding it in `async with bootstrap(...)` (the
gateway's, the order service's and shop_common's integration tests, the GetUser bench, the demo).
New code uses user_service.bootstrap directly; this module adds nothing to it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from shop_common.discovery import Registry, ServiceRegistration

from user_service.adapters.reads import SqlUserReads
from user_service.adapters.update_hub import UpdateHub
from user_service.bootstrap import App, Overrides, bootstrap
from user_service.entrypoints.grpc.interceptors import CallPipeline
from user_service.settings import Settings


@dataclass
class UserServer:
    """A started user service; `stop()` unwinds it (a second call does nothing)."""

    app: App
    _running: AsyncExitStack
    stopped: bool = False

    @property
    def port(self) -> int:
        """The port the gRPC server listens on."""
        return self.app.port

    @property
    def settings(self) -> Settings:
        """The settings it runs with."""
        return self.app.settings

    @property
    def hub(self) -> UpdateHub:
        """The update hub (subscriptions)."""
        return self.app.updates

    @property
    def registration(self) -> ServiceRegistration:
        """Its discovery registration."""
        return self.app.registration

    @property
    def repository(self) -> SqlUserReads:
        """The read side (its coalescing reader counts queries and reads)."""
        return self.app.reads

    @property
    def pipeline(self) -> CallPipeline:
        """The interceptor pipeline (tests read its call counters)."""
        return self.app.server.pipeline

    def calls_in_flight(self) -> int:
        """Calls being handled now (health checks included)."""
        return self.app.calls_in_flight()

    async def stop(self, grace: float | None = None) -> None:
        """Deregister, drain in-flight calls within `grace` (default GRACE_PERIOD), close all."""
        if self.stopped:
            return
        self.stopped = True
        if grace is not None:
            self.app.server.grace = grace
        await self._running.aclose()


async def create_server(
    settings: Settings, address: str | None = None, registry: Registry | None = None
) -> tuple[UserServer, int]:
    """bootstrap(settings) bound to `address` (default HOST:GRPC_PORT), registered in `registry`
    (default: Consul when CONSUL_HTTP_ADDR is set, else static); returns it and its port."""
    overrides: Overrides = {}
    if address:
        overrides["address"] = address
    if registry:
        overrides["registry"] = registry
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(bootstrap(settings, **overrides))
        running = UserServer(app, stack.pop_all())
    return running, running.port
