"""REST→gRPC transcoding of /api/users/** onto the user service.

Entry point::

    build_users_router(
        client: UserClient | Callable[[], UserClient],
        *,
        breaker: CircuitBreaker | None = None,   # default: user_service_breaker() ("grpc:user")
        timeout_seconds: float | None = None,     # per-call gRPC deadline (route timeout)
        heartbeat_seconds: float = 15.0,          # SSE keepalive comment interval
        prefix: str = "/api/users",
    ) -> APIRouter

Mount it with `app.include_router(build_users_router(lambda: app.state.user_client, ...))`.
`client` is the app's one shared `shop_common.clients.user.UserClient` (round robin, retries
on UNAVAILABLE), or a callable returning it, looked up per request so it may be created in
the lifespan. What the router needs from the app, per request:

- `Authorization: Bearer <jwt>`: forwarded verbatim to the user service, which verifies it
  and applies its admin/self rules. The router only checks that a bearer token is present
  (401 problem with WWW-Authenticate otherwise); it does not need `request.state.principal`,
  so the gateway's own verification may run before it or not at all.
- `request.state.request_id` (set by shop_common.web's RequestContextMiddleware), else the
  X-Request-ID header: sent to the user service as `x-request-id` metadata.
- shop_common.web problem handlers installed (`instrument_app` or `install_problem_details`):
  every failure is raised as `ProblemError` / FastAPI validation errors.
- Pure ASGI middleware only on these routes (no BaseHTTPMiddleware): NDJSON and SSE bodies are
  streamed, and the SSE response listens for `http.disconnect` to cancel its gRPC call.

Routes: GET /updates (SSE of SubscribeToUpdates, `?ids=1,2`), GET "" (ListUsers: NDJSON with
`Accept: application/x-ndjson`, else one JSON page), POST "" (201 + Location), GET, PATCH
(update mask = the body's keys) and DELETE /{user_id}. gRPC status → HTTP status in
`gateway.entrypoints.transcoding.status`; a breaker per service turns a dead user service into fast 503s
with Retry-After.
"""

from gateway.entrypoints.transcoding.status import (
    http_status_of,
    problem_from,
    user_service_breaker,
)
from gateway.entrypoints.transcoding.streaming import STREAMS_ACTIVE
from gateway.entrypoints.transcoding.users import build_users_router

__all__ = (
    "STREAMS_ACTIVE",
    "build_users_router",
    "http_status_of",
    "problem_from",
    "user_service_breaker",
)
