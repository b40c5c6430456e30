"""The console's API (admins only; the gateway checks the role, and so does this router):

- GET /web/console/events: a snapshot of the system every round (text/event-stream,
  `event: snapshot`), computed from every instance's /metrics;
- GET /web/console/snapshot: one round now (JSON);
- GET /web/console/dead-letters/{queue}: the DLQ of a work queue, left in place;
- POST /web/console/dead-letters/{queue}/replay: republish all or some of them;
- GET /web/console/chaos, PUT/DELETE /web/console/chaos/{service}: the chaos switches of every
  instance of a FastAPI service (shop_common.web.chaos), called with the admin's own token.

The payment provider's switches are the payment service's own admin API
(/api/payments/admin/provider), which the console page calls directly.
"""

# No `from __future__ import annotations`: FastAPI must see the local Annotated aliases.
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from shop_common.web import problem_responses
from starlette.responses import StreamingResponse

from web_service.entrypoints.deps import AdminCaller, Running, Token
from web_service.entrypoints.sse import event_stream, frame

Queue = Annotated[
    str,
    Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", description="A work queue (or its .dlq)"),
]
MessageId = Annotated[str, Field(min_length=1, max_length=200)]


class ReplayBody(BaseModel):
    """Which dead letters to replay: these message ids, or every one when ids is null."""

    model_config = ConfigDict(extra="forbid", strict=True)
    ids: list[MessageId] | None = Field(default=None, max_length=1000)


class Replayed(BaseModel):
    replayed: list[str]


console_router = APIRouter(prefix="/web/console", tags=["console"])


@console_router.get(
    "/events",
    responses=problem_responses(401, 403),
    summary="The system, live (text/event-stream: `event: snapshot`, JSON data)",
    response_class=StreamingResponse,
)
async def console_events(admin: AdminCaller, app: Running) -> StreamingResponse:
    async def frames() -> AsyncIterator[bytes]:
        async for snap in app.console.watch():
            yield frame("snapshot", snap)

    return event_stream(frames(), app.settings.sse_keepalive_seconds)


@console_router.get(
    "/snapshot", responses=problem_responses(401, 403), summary="The system now (one round)"
)
async def console_snapshot(admin: AdminCaller, app: Running) -> dict[str, Any]:
    return await app.console.round()


@console_router.get(
    "/dead-letters/{queue}",
    responses=problem_responses(401, 403, 404, 503),
    summary="The dead letters of a work queue (left in place)",
)
async def dead_letters(
    queue: Queue,
    admin: AdminCaller,
    app: Running,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> dict[str, Any]:
    wanted = min(limit or app.settings.dlq_list_limit, app.settings.dlq_list_limit)
    return {"queue": queue, "messages": await app.dead_letters.browse(queue, wanted)}


@console_router.post(
    "/dead-letters/{queue}/replay",
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Replay dead letters to where they failed (all, or the given message ids)",
)
async def replay_dead_letters(
    queue: Queue, body: ReplayBody, admin: AdminCaller, app: Running
) -> Replayed:
    return Replayed(replayed=await app.dead_letters.replay(queue, body.ids))


class ChaosRuleBody(BaseModel):
    """A chaos rule for every instance of a service (shop_common.web.chaos.ChaosRule)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    path_prefix: str = Field(pattern=r"^/[A-Za-z0-9/_.-]{0,200}$")
    latency_ms: float = Field(default=0, ge=0, le=10_000)
    error_ratio: float = Field(default=0, ge=0, le=1)


Service = Annotated[str, Path(pattern=r"^[a-z][a-z-]{0,40}$", description="e.g. order-service")]


@console_router.get(
    "/chaos", responses=problem_responses(401, 403), summary="Every service's chaos rules"
)
async def chaos_rules(admin: AdminCaller, app: Running, token: Token) -> dict[str, Any]:
    return await app.chaos.rules(token)


@console_router.put(
    "/chaos/{service}",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Set a chaos rule (latency, error ratio on a path prefix) on every instance",
)
async def put_chaos_rule(
    service: Service, body: ChaosRuleBody, admin: AdminCaller, app: Running, token: Token
) -> list[dict[str, Any]]:
    return await app.chaos.put(service, body.model_dump(), token)


@console_router.delete(
    "/chaos/{service}",
    responses=problem_responses(401, 403, 404, 409),
    summary="Remove every chaos rule of every instance of a service",
)
async def clear_chaos_rules(
    service: Service, admin: AdminCaller, app: Running, token: Token
) -> list[dict[str, Any]]:
    return await app.chaos.clear(service, token)
