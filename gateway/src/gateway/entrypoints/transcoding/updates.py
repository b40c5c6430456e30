"""GET /api/users/updates: SubscribeToUpdates as Server-Sent Events."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from shop_common.clients.user import UpdateStream
from shop_common.web import ProblemError, problem_responses

from gateway.entrypoints.transcoding.schemas import INT64_MAX, UserEvent
from gateway.entrypoints.transcoding.streaming import EVENT_STREAM, EventStreamResponse, sse_updates
from gateway.entrypoints.transcoding.user_calls import CallerDep, UserUpstream

MAX_IDS = 1000


def parse_ids(values: list[str]) -> list[int]:
    """User ids from `ids=1,2` and/or repeated `ids=`; 422 problem on anything else."""
    ids: list[int] = []
    for part in (p.strip() for value in values for p in value.split(",")):
        if not part:
            continue
        if not (part.isascii() and part.isdigit() and len(part) <= 19) or not (
            1 <= int(part) <= INT64_MAX
        ):
            raise ProblemError(422, detail=f"ids must be positive user ids; got {part[:40]!r}")
        ids.append(int(part))
    if len(ids) > MAX_IDS:
        raise ProblemError(422, detail=f"at most {MAX_IDS} ids per subscription")
    return ids


async def _attach(stream: UpdateStream, timeout_seconds: float | None) -> None:
    async with asyncio.timeout(timeout_seconds):
        await stream.attached()


def add_updates_route(
    router: APIRouter, upstream: UserUpstream, *, heartbeat_seconds: float
) -> None:
    """Register the SSE route on router (before /{user_id}, whose path it would match)."""

    @router.get(
        "/updates",
        status_code=200,
        summary="Stream user changes as Server-Sent Events",
        description=(
            "Transcodes the server-streaming `SubscribeToUpdates` RPC. The response starts once "
            "the user service has attached the subscription, so every change committed after "
            "the headers arrive is delivered. Each event is `event: user.created|user.updated|"
            "user.deleted` with a JSON `data` line; `: keepalive` comments are sent while it is "
            "quiet. Watching every user (no ids) needs the admin role. The gRPC call is "
            "cancelled as soon as the client disconnects."
        ),
        response_class=EventStreamResponse,
        responses={
            200: {
                "description": "An endless event stream",
                "content": {
                    EVENT_STREAM: {
                        "schema": {"type": "string"},
                        "example": (
                            'id: 1\nevent: user.updated\ndata: {"event_type":"user.updated",'
                            '"user_id":42,"user":{"id":42,"email":"ada@example.com","name":'
                            '"Ada King","roles":["user"],"created_at":"2026-11-25T16:00:00+00:00",'
                            '"updated_at":"2026-11-25T16:05:00+00:00"},"occurred_at":'
                            '"2026-11-25T16:05:00+00:00"}\n\n'
                        ),
                    }
                },
                "x-event-data": UserEvent.model_json_schema(),
            },
            **problem_responses(401, 403, 422, 429, 503, 504),
        },
    )
    async def user_updates(
        caller: CallerDep,
        ids: Annotated[
            list[str],
            Query(description="User ids, comma-separated or repeated; none = every user (admin)"),
        ] = [],  # noqa: B006 - FastAPI copies query defaults per request
    ) -> EventStreamResponse:
        user_ids = parse_ids(ids)
        stream = upstream.client.open_updates(
            user_ids, token=caller.token, request_id=caller.request_id
        )
        try:
            await upstream.call(_attach, stream, upstream.timeout_seconds)
        except BaseException:
            stream.cancel()
            raise
        return EventStreamResponse(
            sse_updates(stream, heartbeat_seconds),
            kind="sse",
            on_close=stream.cancel,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
